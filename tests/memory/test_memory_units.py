"""Pure parts of the memory pipeline (no I/O): resolution rules, the context block, search helpers, packing."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from ingestd.pipelines.memory import block, recall, search
from ingestd.pipelines.memory.codec import pack_vector, unpack_vector
from ingestd.pipelines.memory.embedder import hash_embed
from ingestd.pipelines.memory.graph import Fact, KnownEntity, Message, MessageHit, NewFact, Scope, SearchHit
from ingestd.pipelines.memory.resolve import EntityResolver, FactResolver
from ingestd.pipelines.memory.retrieve import (
    ANSWER_SHARE,
    NEIGHBOUR_SHARES,
    Recall,
    _smoothed,
    named_speakers,
    vector_text,
)

T1, T2, T3 = (datetime(2026, m, 1, tzinfo=UTC) for m in (3, 6, 9))
EMMA = KnownEntity("emma", "Emma Schmidt", "person", ("emma schmidt",), hash_embed("Emma Schmidt"))


def _fact(fid: str, obj: str, valid: datetime, invalid: datetime | None = None, predicate: str = "lives_in") -> Fact:
    sentence = f"Emma Schmidt {predicate.replace('_', ' ')} {obj}."
    return Fact(fid, "emma", "Emma Schmidt", predicate, None, obj, sentence, valid, invalid, valid, "ep", "job")


def _new(obj: str, valid: datetime, predicate: str = "lives_in") -> NewFact:
    return NewFact("", "emma", predicate, None, obj, f"She {predicate} {obj}.", valid, None, "ep", None)


def test_spellings_of_one_person_resolve_to_her() -> None:
    resolver = EntityResolver([EMMA], id_prefix="j-e")
    ids = [resolver.resolve(n, "person", "", None) for n in ("emma schmidt", "Ms. Schmidt", "EMMA", "Schmidt")]
    assert ids == ["emma"] * 4 and resolver.new_entities == []
    assert {a.alias for a in resolver.new_aliases} == {"schmidt", "emma"}
    assert resolver.resolve("Emma Watson", "person", "", None) == "j-e0"  # another Emma: a new person


def test_near_spellings_merge_and_look_alikes_do_not() -> None:
    anna = KnownEntity("anna", "Anna Müller", "person", ("anna muller",), hash_embed("Anna Müller"))
    resolver = EntityResolver([EMMA, anna], id_prefix="j-e")
    typos = [resolver.resolve(n, "person", "", hash_embed(n)) for n in ("Emma Schmit", "Anna Mueller")]
    assert typos == ["emma", "anna"]
    others = [resolver.resolve(n, "person", "", hash_embed(n)) for n in ("Anna Miller", "Emma Schmidt-Lee")]
    assert others == ["j-e0", "j-e1"]  # 91 % alike, or another number of words: other people
    assert resolver.resolve("Emma Schmit", "place", "", hash_embed("Emma Schmit")) == "j-e2"  # not a person


def test_a_lone_name_shared_by_two_people_stays_apart() -> None:
    anna = KnownEntity("anna", "Anna Schmidt", "person", ("anna schmidt",), None)
    resolver = EntityResolver([EMMA, anna], id_prefix="j-e")
    assert resolver.resolve("Schmidt", "person", "", None) == "j-e0"  # ambiguous: not guessed


def test_contradiction_closes_the_older_fact_and_duplicates_are_skipped() -> None:
    facts = FactResolver([_fact("f-lisbon", "Lisbon", T1)], id_prefix="j-f")
    facts.add(_new("Lisbon", T2))  # said again: nothing new
    facts.add(_new("Porto", T2))  # moved: Lisbon closes at T2
    facts.add(_new("Stripe", T2, "works_at"))  # another predicate: no conflict
    assert facts.duplicates == 1
    assert [(f.object, f.invalid_at) for f in facts.facts] == [("Porto", None), ("Stripe", None)]
    assert [(i.fact_id, i.invalid_at, i.by_fact_id) for i in facts.invalidations] == [("f-lisbon", T2, "j-f0")]


def test_a_fact_told_late_about_an_older_state_is_stored_closed() -> None:
    facts = FactResolver([_fact("f-porto", "Porto", T2)], id_prefix="j-f")
    facts.add(_new("Lisbon", T1))
    assert [(f.object, f.invalid_at) for f in facts.facts] == [("Lisbon", T2)] and facts.invalidations == []


def _said(key: str, speaker: str, content: str, day: int) -> MessageHit:
    message = Message(key, f"s:{key}", "s", int(key), "user", speaker, content, datetime(2023, 5, day, tzinfo=UTC), ())
    return MessageHit(message, 1.0 / int(key))


def test_context_block_fits_the_budget_shows_who_and_when_and_cites_what_it_shows() -> None:
    long = "We went hiking on Sunday. " * 3 + "My daughter painted a sunset with purple clouds. " + "It rained. " * 30
    hits = [_said("1", "Melanie", long, 8), _said("2", "Caroline", "What did you paint last week?", 7)]
    hits += [
        _said(str(k), "Caroline", f"Filler words number {k} about nothing much at all here.", 9) for k in range(3, 60)
    ]
    fact = dataclasses.replace(_fact("f1", "a painting", T2, predicate="sells"), message_ids=("s:77",))
    unrelated = dataclasses.replace(_fact("f2", "Porto", T2), message_ids=("s:78",))
    found = Recall(hits, [SearchHit(fact, 1.0), SearchHit(unrelated, 0.9)], [], ("Melanie",))
    answer = recall.context_json("alice", "What did Melanie paint?", found, max_words=120)
    lines = answer["context"].splitlines()
    assert answer["words"] == len(answer["context"].split()) <= 120
    assert lines[:2] == ['<memory user="alice">', "Conversation:"] and lines[-1] == "</memory>"
    # Messages are grouped by day, in time order; the long one is cut to the sentence that matches and what follows.
    assert lines[2:4] == ["7 May 2023:", "Caroline: What did you paint last week?"]
    assert lines[4] == "8 May 2023:" and "My daughter painted a sunset with purple clouds. It rained." in lines[5]
    assert len(lines[5].split()) <= block.TOP_CAP + 2 and lines[5].count("It rained.") < 30
    assert lines[6] == "9 May 2023:"
    # The fact from a message not shown comes last (one about the question's words, not Porto); every message
    # shown is cited, and the fact's source too.
    assert lines[-3:-1] == ["Facts:", "- Emma Schmidt sells a painting (1 June 2026)"]
    shown = [m["id"] for m in answer["messages"]]
    assert shown[:2] == ["s:2", "s:1"] and answer["message_ids"] == [*shown, "s:77"] and answer["fact_ids"] == ["f1"]
    assert all(f"{m['speaker']}: {m['shown']}" in lines for m in answer["messages"])
    assert "Nothing relevant" in recall.context_json("alice", "x", Recall([], [], []))["context"]


def test_a_cut_message_keeps_the_part_that_answers() -> None:
    stems = {block._stem(t) for t in search.query_terms("What car did Jonah buy?")}
    # A run-on turn without full stops: the piece holding the answer, not the first words.
    run_on = " ".join(["so we walked around the market for hours"] * 8) + " and Jonah bought a red car in the end"
    assert "Jonah bought a red car" in block.snippet(run_on, stems, 20)
    # A question asking "when" keeps the sentence that carries the resolved date.
    dated = "We were drifting for months and he wants to stay in Austin. We talked on Sunday [12 February 2023]."
    when = {block._stem(t) for t in search.query_terms("When did Rosa and Theo break up?")}
    assert "[12 February 2023]" in block.snippet(dated, when, 12, dated=True)
    assert "[12 February 2023]" not in block.snippet(dated, when, 12)


def test_speakers_show_by_first_name_where_it_is_unambiguous() -> None:
    names = block.short_names(["Maya Okafor", "Daniel Reyes", "Sam Okoye", "Sam Hill", "User"])
    assert names == {"Maya Okafor": "Maya", "Daniel Reyes": "Daniel", "Sam Okoye": "Sam Okoye", "Sam Hill": "Sam Hill",
                     "User": "User"}  # fmt: skip


def test_query_terms_and_full_text_expressions() -> None:
    terms = search.query_terms("Where does Émma LIVE, and who is Tom?")
    assert terms == ["emma", "live", "tom"]
    assert search.fts5_match(terms) == '"emma"* OR "live"* OR "tom"'
    assert search.tsquery(terms, "&") == "emma:* & live:* & tom"
    assert search.merge_rankings(["a", "b"], ["b", "c", "d"], limit=3) == ["a", "b", "c"]
    assert search.fact_search_texts("Anna", "lives_in", "Zürich", "Anna lives in Zürich.") == (
        "Anna lives in Zürich Anna lives in Zurich",
        "Anna lives in Zürich. Anna lives in Zurich.",
    )


def test_vectors_pack_to_float32_and_back() -> None:
    vector = [0.5, -1.25, 3.0]
    assert unpack_vector(pack_vector(vector)) == vector
    assert unpack_vector([1, 2]) == [1.0, 2.0] and unpack_vector(None) is None and pack_vector(None) is None
    embedding = [i / 7 - 18.0 for i in range(256)]  # floats as models return them, ~18 digits in JSON
    assert len(pack_vector(embedding) or "") < len(json.dumps(embedding)) / 3


def test_vector_cache_appends_new_rows_and_rereads_on_a_replaced_one() -> None:
    cache, scope = search.VectorCache(), Scope("t", "u")

    def row(seq: int, owner: str, vector: list[float]) -> tuple[int, str, bytes]:
        return seq, owner, search.vector_to_bytes(vector)

    first = cache.refresh(scope, "fact", "m", 1, [row(1, "a", [1, 0]), row(2, "b", [0, 1])], since=0)
    assert first is not None and first.last_seq == 2
    grown = cache.refresh(scope, "fact", "m", 2, [row(5, "c", [1, 1])], since=first.last_seq)
    assert grown is not None and grown.ids == ["a", "b", "c"] and grown.last_seq == 5
    assert [i for i, _ in search.nearest(grown, [1.0, 0.9], k=2)] == ["c", "a"]
    assert cache.refresh(scope, "fact", "m", 3, [row(6, "a", [0, 1])], since=5) is None  # "a" re-embedded
    assert cache.get(scope, "fact", "m") is grown and cache.get(scope, "entity", "m") is None


def test_the_query_embedded_without_the_speakers_it_names() -> None:
    speakers = ["Omar Haddad", "Talia Brenner", "Marcus Bell"]
    asked = {
        "What pets does Omar have?": "What pets does have?",
        "What did Omar\u2019s sister do?": "What did sister do?",
        "Where is Marcus' dog?": "Where is dog?",
        "Who is Omar Haddad?": "Who is Omar Haddad?",  # nothing else to embed: the question as it is
        "When did Talia propose to Sloane?": "When did propose to Sloane?",
    }
    for query, embedded in asked.items():
        assert vector_text(query, named_speakers(query, speakers)) == embedded


def test_the_reply_to_a_question_gains_more_of_its_score_than_other_replies() -> None:
    asked = [_said("1", "Talia", "How's Miso?", 1).message, _said("2", "Omar", "She sleeps on my shoes.", 1).message]
    told = [_said("1", "Talia", "Miso is fine.", 1).message, _said("2", "Omar", "She sleeps on my shoes.", 1).message]
    gained = [_smoothed(pair, {"1": 1.0})[pair[1]] for pair in (asked, told)]
    assert gained == [ANSWER_SHARE, NEIGHBOUR_SHARES[-1]]


def test_messages_ranked_after_the_first_dozen_show_their_best_sentence_only_unless_the_question_asks_when() -> None:
    text = (
        "We finally went to the coast for the weekend. " + "The weather was grey and the sea was cold and rough. " * 4
    )
    found = Recall([_said(str(k), "Caroline", text, 9) for k in range(1, 31)], [], [], ())

    def shown(question: str) -> dict[str, str]:
        return {m.id: text for m, text in block.build("alice", question, found, 1000).messages}

    where = shown("Where did Caroline go?")
    assert len(where["s:5"].split()) > block.TAIL_CAP + 1 >= len(where["s:20"].split())  # the 20th: one sentence
    assert "went to the coast" in where["s:20"]
    when = shown("When did Caroline go to the coast?")
    assert len(when["s:20"].split()) > block.TAIL_CAP + 1  # a date may sit in any sentence
