"""A chat between two named people through the HTTP API, on SQLite and PostgreSQL: each speaker's facts stay
theirs, relative dates land on the right day, and ``/context`` shows (and cites) the messages that answer."""

from __future__ import annotations

from typing import Any

from memory_support import api_client, fast_settings, job_done, post_session

from ingestd.store.protocol import JobStore


def _said(name: str, content: str, at: str, mid: str | None = None) -> dict[str, Any]:
    message = {"name": name, "role": "user", "content": content, "timestamp": at}
    return message | {"id": mid} if mid else message


AT = "2023-05-08T13:56:00Z"
MAY = {
    "user_id": "cm",
    "session_id": "D1",
    "messages": [
        _said("Caroline", "Hey Mel! I went to the LGBTQ support group yesterday and it was so powerful.", AT),
        _said("Melanie", "That is great, Caroline! I painted a lake sunrise last week, it calms me.", AT),
        _said("Caroline", "I work as a counselor at a youth shelter in Boston.", "2023-05-08T13:58:00Z"),
        _said("Melanie", "I am a teacher and I live in Denver with my kids.", "2023-05-08T13:59:00Z"),
    ],
}  # fmt: skip
JUNE = {
    "user_id": "cm",
    "session_id": "D2",
    "messages": [
        _said("Melanie", "We went camping at the lake two days ago, the kids loved it.", "2023-06-20T10:00:00Z", "m-1"),
        _said("Caroline", "I am reading Becoming Nicole, a book about a trans girl.", "2023-06-20T10:01:00Z", "m-2"),
    ],
}  # fmt: skip
# An evening in New York: 02:30 UTC on 21 June, but the 20th where it was said.
EVENING = {
    "user_id": "cm",
    "session_id": "D3",
    "messages": [_said("Caroline", "I adopted a kitten called Pip yesterday!", "2023-06-20T21:30:00-05:00", "e-1")],
}


async def _context(client: Any, q: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/memory/cm/context", params={"q": q, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_two_speakers_keep_their_own_facts_and_dates(store: JobStore) -> None:
    async with api_client(store, fast_settings(store.url)) as client:
        jobs = [await job_done(client, await post_session(client, s)) for s in (MAY, JUNE, EVENING)]
        assert [j["status"] for j in jobs] == ["succeeded"] * 3, [j.get("error") for j in jobs]
        support = await _context(client, "When did Caroline go to the LGBTQ support group?")
        camping = await _context(client, "When did Melanie go camping?", max_words=60)
        work = (await client.get("/v1/memory/cm/search", params={"q": "Where does Melanie live?"})).json()
        text = await client.get("/v1/memory/cm/context", params={"q": "Boston", "format": "text"})
        kitten = await _context(client, "When did Caroline adopt the kitten?")
        evening = (await client.get("/v1/memory/cm/messages", params={"session_id": "D3"})).json()
    lines = support["context"].splitlines()
    # "yesterday", said on 8 May 2023, is shown as 7 May 2023, and the message is cited by its default id.
    said = "Caroline: Hey Mel! I went to the LGBTQ support group yesterday [7 May 2023] and it was so powerful."
    assert lines[lines.index(said) - 1] == "8 May 2023:" and "D1:0" in support["message_ids"]
    assert camping["words"] <= 60 and "two days ago [18 June 2023]" in camping["context"]
    assert "m-1" in camping["message_ids"]
    hit = next(m for m in work["messages"] if m["id"] == "D1:3")
    assert hit["speaker"] == "Melanie" and hit["date"] == "8 May 2023" and hit["message_ids"] == ["D1:3"]
    # "I" is whoever says it: Melanie lives in Denver, Caroline works in Boston, never the other way round.
    facts = {(f["subject"]["name"], f["object"]["name"]) for f in work["facts"]}
    assert ("Melanie", "Denver") in facts and not any(s == "Caroline" and o == "Denver" for s, o in facts)
    denver = next(f for f in work["facts"] if f["object"]["name"] == "Denver")
    assert denver["message_ids"] == ["D1:3"] and denver["valid_at"].startswith("2023-05-08")
    assert (
        text.headers["content-type"].startswith("text/plain")
        and "Caroline: I work as a counselor at a youth" in text.text
    )
    # The fact read from "I went … yesterday" is Caroline's, and held from the day before it was said.
    group = next(f for f in work["facts"] if f["object"]["name"] == "LGBTQ support group")
    assert group["subject"]["name"] == "Caroline" and group["valid_at"].startswith("2023-05-07")
    # The evening message shows under the day it was said where it was said, not UTC's next day, and keeps its zone.
    lines = kitten["context"].splitlines()
    said = "Caroline: I adopted a kitten called Pip yesterday [19 June 2023]!"
    heading = next(h for h in reversed(lines[: lines.index(said)]) if h.endswith(" 2023:"))
    assert heading == "20 June 2023:", kitten["context"]
    assert [m["timestamp"] for m in evening["messages"]] == ["2023-06-20T21:30:00-05:00"]
