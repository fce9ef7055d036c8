"""Made-up but well-formed content: JSON objects that validate against a request's schema, and embeddings.

Everything is deterministic from the simulator's seed and the request, so a retried call gets the same answer.
Strings are built from the prompt's own words (so tests can see the prompt reached the model), arrays hold 1-3
items, enums pick from the enum, ``date``/``date-time`` formats (and date-like property names) are ISO dates
near the first date the prompt mentions.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import date, timedelta
from typing import Any

import numpy as np

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{2,}")
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_FILLER = "note plan meeting project update team review call follow detail summary task".split()
_EMOJI = ("📝", "📅", "💡", "🛒", "✈️", "🏥", "💼", "🎉")


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """A ``random.Random`` determined by the seed and the request parts."""
    digest = hashlib.sha256("\x00".join((str(seed), *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class SchemaFiller:
    """Builds a JSON value that validates against a JSON schema (the subset structured outputs use)."""

    def __init__(self, root: dict[str, Any], prompt: str, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.words = _WORD.findall(prompt) or _FILLER
        found = _DATE.search(prompt)
        try:
            self.base_date = date(*map(int, found.groups())) if found else date(2026, 1, 5)
        except ValueError:
            self.base_date = date(2026, 1, 5)

    def value(self, schema: dict[str, Any], name: str = "", depth: int = 0) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(schema["enum"])
        for combinator in ("anyOf", "oneOf", "allOf"):
            if schema.get(combinator):
                options = [s for s in schema[combinator] if self._resolve(s).get("type") != "null"]
                return self.value(options[0] if options else schema[combinator][0], name, depth)
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        return self._typed(kind, schema, name, depth)

    def _typed(self, kind: str, schema: dict[str, Any], name: str, depth: int) -> Any:
        if kind == "object":
            props = schema.get("properties", {})
            return {key: self.value(sub, key, depth + 1) for key, sub in props.items()}
        if kind == "array":
            low = max(1, int(schema.get("minItems", 1))) if depth < 4 else int(schema.get("minItems", 0))
            high = max(low, min(3, int(schema.get("maxItems", 3))))
            return [self.value(schema.get("items", {}), name, depth + 1) for _ in range(self.rng.randint(low, high))]
        if kind in ("integer", "number"):
            return self._number(kind, schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        while isinstance(ref, str) and ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            schema, ref = node, node.get("$ref")
        return schema

    def _number(self, kind: str, schema: dict[str, Any]) -> int | float:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", max(low, 0) + 10))
        if kind == "integer":
            low_i = int(low) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
            high_i = int(high) - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
            return self.rng.randint(low_i, max(low_i, high_i))
        return round(self.rng.uniform(float(low), float(high)), 3)

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt, lowered = schema.get("format", ""), name.lower()
        day = self.base_date + timedelta(days=self.rng.randint(0, 14))
        if fmt == "date-time" or lowered.endswith("_at") or lowered.endswith("time"):
            text = f"{day.isoformat()}T{self.rng.randint(8, 18):02d}:00:00Z"
        elif fmt == "date" or "date" in lowered or lowered in ("due", "when"):
            text = day.isoformat()
        elif "emoji" in lowered:
            text = self.rng.choice(_EMOJI)
        else:
            text = self._words(lowered)
        return _fit(text, int(schema.get("minLength", 0)), schema.get("maxLength"))

    def _words(self, name: str) -> str:
        long = any(k in name for k in ("overview", "summary", "description", "sentence", "fact", "text"))
        count = self.rng.randint(10, 20) if long else self.rng.randint(2, 5)
        start = self.rng.randrange(len(self.words))
        picked = [self.words[(start + i) % len(self.words)] for i in range(count)]
        text = " ".join(picked)
        return text[:1].upper() + text[1:] + ("." if long else "")


def _fit(text: str, min_length: int, max_length: Any) -> str:
    if len(text) < min_length:
        text = text + " " + "x" * (min_length - len(text) - 1) if min_length > 1 else "x" * min_length
    if isinstance(max_length, int):
        text = text[:max_length]
    return text


def fill_schema(schema: dict[str, Any], prompt: str, *, seed: int, name: str = "") -> Any:
    """A value valid against ``schema``, built from ``prompt``'s words; deterministic per (seed, schema, prompt)."""
    rng = seeded_rng(seed, name, repr(sorted(schema.items(), key=lambda kv: kv[0])), prompt)
    return SchemaFiller(schema, prompt, rng).value(schema)


def embed_text(text: str, dimensions: int, *, seed: int) -> list[float]:
    """A unit vector from hashed character trigrams and words of the text (the hashing trick).

    The same text always gives the same vector, and texts that share spelling (``Jon Smith``/``John Smith``) get
    a high cosine similarity, which is enough for tests of entity matching; meaning is not modelled.
    """
    vector = np.zeros(dimensions)
    lowered = f" {' '.join(text.lower().split())} "
    features = [lowered[i : i + 3] for i in range(len(lowered) - 2)] + lowered.split()
    for feature in features:
        digest = hashlib.blake2b(f"{seed}\x00{feature}".encode(), digest_size=32).digest()
        for i in range(0, 32, 4):
            slot = int.from_bytes(digest[i : i + 3], "big")
            vector[slot % dimensions] += 1.0 if digest[i + 3] & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        vector[0], norm = 1.0, 1.0
    return [round(float(x) / norm, 6) for x in vector]


def token_count(text: str) -> int:
    """Tokens the way the simulator bills them: about four characters each."""
    return max(1, (len(text) + 3) // 4) if text else 0
