"""The job store's schema, as the Alembic migrations declare it: they are its one source, this module reads them.

``declared()`` is what the revisions in ``migrations/versions`` ask for, replayed in order onto a SQLAlchemy
``MetaData`` without touching a database (``create_table``, ``add_column``, ``create_index`` and their drops;
raw SQL such as PostgreSQL's triggers is not schema and is passed over). ``tests/store/test_migrations.py``
checks that what ``alembic upgrade head`` really makes on SQLite and on PostgreSQL is exactly this: a column
added by raw SQL, or a dialect that makes something else, fails there by name. To read the schema:
``python -m ingestd.store.schema [sqlite|postgresql]`` prints its ``CREATE`` statements.

Times are ``timestamptz`` on PostgreSQL and Unix seconds (``REAL``) on SQLite, where comparisons on plain numbers
are fastest and unambiguous. JSON documents are stored as text on both (encoded with orjson), so the two
backends read and write them the same way. Indexes exist for what must stay O(log n) with a million queued
jobs: claiming (``jobs_queued``, ``jobs_leases``, ``jobs_ordering``), idempotency (``jobs_idempotency``), listing
(``jobs_tenant``), retention (``jobs_expiry``) and ETAs (``jobs_durations``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from ingestd.store import migrations


class _Recorder:
    """What Alembic operations do to a ``MetaData`` instead of a database."""

    def __init__(self, metadata: sa.MetaData) -> None:
        self.metadata = metadata

    def invoke(self, operation: Any) -> Any:
        tables = self.metadata.tables
        if isinstance(operation, ops.CreateTableOp):
            return sa.Table(operation.table_name, self.metadata, *operation.columns, **operation.kw)
        if isinstance(operation, ops.AddColumnOp):
            tables[operation.table_name].append_column(operation.column)
        elif isinstance(operation, ops.CreateIndexOp):
            table = tables[operation.table_name]
            columns = [_index_column(table, c) for c in operation.columns]
            sa.Index(operation.index_name, *columns, unique=bool(operation.unique), _table=table, **operation.kw)
        elif isinstance(operation, ops.DropTableOp):
            self.metadata.remove(tables[operation.table_name])
        elif not isinstance(operation, ops.ExecuteSQLOp):
            raise NotImplementedError(f"schema.py cannot replay {type(operation).__name__} yet: teach _Recorder")
        return None


def _index_column(table: sa.Table, column: Any) -> Any:
    """An index's column as SQLAlchemy reflects it: a name, or ``text("priority DESC")``, as a sorted column."""
    if isinstance(column, str):
        return table.c[column]
    name, _, order = str(column).partition(" ")
    if isinstance(column, sa.TextClause) and name in table.c and order in ("ASC", "DESC"):
        return table.c[name].desc() if order == "DESC" else table.c[name].asc()
    return column


@contextmanager
def _recording(metadata: sa.MetaData, dialect: str) -> Iterator[None]:
    engine = sa.create_engine("sqlite://")  # only so that revisions can inspect a (empty) database
    try:
        with engine.connect() as connection:
            # The context's dialect is the one replayed for: the revisions that lay out a table per dialect ask
            # it (``op.get_context().dialect``), as the memory graph's tables do (0007).
            chosen = postgresql.dialect() if dialect == "postgresql" else connection.dialect  # type: ignore[no-untyped-call]
            operations = Operations(MigrationContext(chosen, connection, {}))
            operations.invoke = _Recorder(metadata).invoke  # type: ignore[method-assign]
            operations._install_proxy()  # what alembic.op calls in the revisions
            try:
                yield
            finally:
                operations._remove_proxy()
    finally:
        engine.dispose()


def declared(dialect: str = "sqlite") -> sa.MetaData:
    """A new ``MetaData`` with every table and index the migrations make on ``dialect`` (``sqlite`` or
    ``postgresql``), from the first revision to head."""
    metadata = sa.MetaData()
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    with _recording(metadata, dialect):
        for script in reversed(list(scripts.walk_revisions("base", "heads"))):
            script.module.upgrade()
    return metadata


def create_statements(dialect: sa.Dialect) -> list[str]:
    """The ``CREATE TABLE`` and ``CREATE INDEX`` statements of the schema on ``dialect``."""
    statements = []
    for table in declared(dialect.name).sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        statements += [str(CreateIndex(i).compile(dialect=dialect)) for i in sorted(table.indexes, key=str)]
    return statements


if __name__ == "__main__":  # pragma: no cover - a reading aid
    chosen = postgresql.dialect() if sys.argv[1:] == ["postgresql"] else sqlite.dialect()  # type: ignore[no-untyped-call]
    print(";\n\n".join(create_statements(chosen)) + ";")
