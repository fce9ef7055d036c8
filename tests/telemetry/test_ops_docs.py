"""docs/operations.md documents every setting an operator can set."""

from __future__ import annotations

from pathlib import Path

from ingestd.settings import Settings

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def test_every_setting_is_documented() -> None:
    text = OPERATIONS.read_text()
    missing = [name for name in Settings.model_fields if f"`INGESTD_{name.upper()}`" not in text]
    assert missing == [], f"add these to docs/operations.md: {missing}"
