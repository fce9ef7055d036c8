"""The offline extractor parses the episodes that arrive together in one batch: each gets what it would get
alone, and an episode spaCy cannot parse fails alone."""

from __future__ import annotations

import asyncio

import pytest

from ingestd.models import JSON
from ingestd.pipelines.memory.offline import SpacyExtractor, extract_offline


def _episode(index: int, *contents: object) -> JSON:
    messages = [
        {"id": f"s:{index}:{i}", "name": name, "role": "user", "content": text, "timestamp": None}
        for i, (name, text) in enumerate(zip(["Ana", "Ben"] * 4, contents, strict=False))
    ]
    return {"index": index, "messages": messages}


EPISODES = [
    _episode(0, "I moved to Lisbon last year.", "My sister Emma Schmidt works at Stripe."),
    _episode(1, "Tom Becker visited Osaka in May.", "He likes ramen."),
    _episode(2, "I am allergic to peanuts."),
]


async def test_episodes_extracted_together_get_what_each_gets_alone() -> None:
    extractor = SpacyExtractor()
    together = await asyncio.gather(*(extractor.extract(e) for e in EPISODES))
    assert together == [extract_offline(e) for e in EPISODES]
    assert {"Ana", "Tom Becker"} <= {f["subject"] for answer in together for f in answer["facts"]}


async def test_an_episode_that_cannot_be_parsed_fails_alone() -> None:
    extractor = SpacyExtractor()
    broken = _episode(9, None)  # not text
    outcomes = await asyncio.gather(*(extractor.extract(e) for e in [EPISODES[0], broken]), return_exceptions=True)
    assert outcomes[0] == extract_offline(EPISODES[0])
    assert isinstance(outcomes[1], Exception)
    with pytest.raises(Exception):  # noqa: B017 - whatever spaCy raises for a non-text
        extract_offline(broken)
