"""The column types and index shapes the revisions in ``versions/`` spell their tables with.

A revision must never change once released, so nothing here changes either: a new type or shape gets a new name.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

Timestamp = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")  # timestamptz; Unix seconds on SQLite
Seconds = sa.Float()  # limiter times are Unix seconds on both backends (ingestd.slots works in them)
Bytes = sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql")


def where(sql: str) -> dict[str, Any]:
    """The keyword arguments of a partial index on both dialects."""
    return {"postgresql_where": sa.text(sql), "sqlite_where": sa.text(sql)}
