"""The memory graph's tables (``mem_*``), which the memory stores created themselves on every open until now.

Each table is made only where absent (``IF NOT EXISTS``), and the columns later versions of the stores added are
added where missing, so that a database whose graph an earlier version made is upgraded as it is (its rows kept).
The two dialects keep different layouts, as the stores always did: PostgreSQL times are ``timestamptz``, full text
is a generated ``tsvector`` column with a GIN index, and the embeddings carry a ``seq`` (a ``bigserial``: what a
process reads after the rows it holds); SQLite times are ISO text (fixed width, UTC: text order is time order),
full text is two FTS5 virtual tables (raw SQL: not schema ``store/schema.py`` replays), and an embedding's
``rowid`` is its sequence number.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

revision = "0007"
down_revision = "0006"

TABLES = ("mem_users", "mem_applied_jobs", "mem_episodes", "mem_entities", "mem_aliases", "mem_facts",
          "mem_embeddings", "mem_messages", "mem_speakers", "mem_vector_snapshots")  # fmt: skip
# SQLite's full-text indexes (FTS5 virtual tables; each has shadow tables named after it: ``<name>_data``, …).
FTS_TABLES = {
    "mem_fact_text": "scope, triple, sentence, fact_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'",
    "mem_message_text": "scope, speaker, content, tokenize = 'porter unicode61 remove_diacritics 2'",
}
_FACT_TSV = "setweight(to_tsvector('simple', triple_text), 'A') || setweight(to_tsvector('simple', sentence_text), 'B')"


def _postgres() -> bool:
    # The migration context's dialect (``store/schema.py`` replays the revisions for either dialect).
    return op.get_context().dialect.name == "postgresql"


def _types(pg: bool) -> tuple[TypeEngine[Any], TypeEngine[Any], dict[str, bool]]:
    """A time, a count (a sequence number, a version) and the table options of an autoincrementing key."""
    if pg:
        return sa.DateTime(timezone=True), sa.BigInteger(), {}
    return sa.Text(), sa.Integer(), {"sqlite_autoincrement": True}  # INTEGER PRIMARY KEY AUTOINCREMENT


def _key(name: str, type_: Any, pg: bool, **kw: Any) -> sa.Column[Any]:
    """A table's one-column primary key. The stores spelt it ``<name> TEXT PRIMARY KEY`` without NOT NULL, which
    SQLite takes as nullable (its old quirk; PostgreSQL makes a key NOT NULL): declared so, the tables made here
    and those the stores made before are the same."""
    return sa.Column(name, type_, primary_key=True, nullable=not pg, **kw)


def upgrade() -> None:
    pg = _postgres()
    time, count, serial = _types(pg)
    text, blob = sa.Text, postgresql.BYTEA if pg else sa.LargeBinary
    op.create_table(
        "mem_users",
        sa.Column("tenant", text, primary_key=True),
        sa.Column("user_id", text, primary_key=True),
        sa.Column("version", count, nullable=False),
        sa.Column("updated_at", time, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "mem_applied_jobs",
        _key("job_id", text, pg),
        sa.Column("tenant", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("applied_at", time, nullable=False),
        sa.Column("stats", text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "mem_episodes",
        _key("id", text, pg),
        sa.Column("tenant", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("session_id", text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("content", text, nullable=False),
        sa.Column("started_at", time),
        sa.Column("reference_time", time),
        sa.Column("job_id", text, nullable=False),
        sa.Column("created_at", time, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "mem_entities",
        _key("id", text, pg),
        sa.Column("tenant", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("name", text, nullable=False),
        sa.Column("type", text, nullable=False),
        sa.Column("summary", text, nullable=False),
        sa.Column("created_at", time, nullable=False),
        sa.Column("updated_at", time, nullable=False),
        if_not_exists=True,
    )
    op.create_index("mem_entities_scope", "mem_entities", ["tenant", "user_id"], if_not_exists=True)
    op.create_table(
        "mem_aliases",
        sa.Column("tenant", text, primary_key=True),
        sa.Column("user_id", text, primary_key=True),
        sa.Column("alias", text, primary_key=True),
        sa.Column("entity_id", text, nullable=False),
        if_not_exists=True,
    )
    full_text = [
        sa.Column("triple_text", text, nullable=False),
        sa.Column("sentence_text", text, nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR, sa.Computed(_FACT_TSV, persisted=True)),
    ]
    op.create_table(
        "mem_facts",
        _key("seq", count, pg, autoincrement=True),
        sa.Column("id", text, nullable=False, unique=True),
        sa.Column("tenant", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("subject_id", text, nullable=False),
        sa.Column("predicate", text, nullable=False),
        sa.Column("object_id", text),
        sa.Column("object", text, nullable=False),
        sa.Column("sentence", text, nullable=False),
        sa.Column("valid_at", time),
        sa.Column("invalid_at", time),
        sa.Column("invalidated_by", text),
        sa.Column("created_at", time, nullable=False),
        sa.Column("episode_id", text, nullable=False),
        sa.Column("job_id", text, nullable=False),
        *(full_text if pg else []),
        sa.Column("message_ids", text, nullable=False, server_default="[]"),
        if_not_exists=True,
        **serial,
    )
    _add_missing("mem_facts", "message_ids", "text NOT NULL DEFAULT '[]'")
    op.create_index("mem_facts_subject", "mem_facts", ["tenant", "user_id", "subject_id"], if_not_exists=True)
    op.create_index("mem_facts_object", "mem_facts", ["tenant", "user_id", "object_id"], if_not_exists=True)
    op.create_table(
        "mem_embeddings",
        sa.Column("kind", text, primary_key=True),
        sa.Column("owner_id", text, primary_key=True),
        sa.Column("tenant", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("model", text, nullable=False),
        sa.Column("vector", blob, nullable=False),
        *([sa.Column("seq", count, nullable=False)] if pg else []),
        if_not_exists=True,
    )
    if pg:  # a bigserial: its sequence, owned by the column, and the default (the spelling of the stores before)
        op.execute("ALTER TABLE mem_embeddings ADD COLUMN IF NOT EXISTS seq bigserial")
        op.execute("CREATE SEQUENCE IF NOT EXISTS mem_embeddings_seq_seq OWNED BY mem_embeddings.seq")
        op.execute("ALTER TABLE mem_embeddings ALTER COLUMN seq SET DEFAULT nextval('mem_embeddings_seq_seq')")
    op.create_index(
        "mem_embeddings_scope", "mem_embeddings", ["tenant", "user_id", "kind", "model"], if_not_exists=True
    )
    _messages(pg)
    if pg:
        op.create_index("mem_facts_tsv", "mem_facts", ["tsv"], postgresql_using="gin", if_not_exists=True)
        op.create_index("mem_messages_tsv", "mem_messages", ["tsv"], postgresql_using="gin", if_not_exists=True)
        # Read in seq order (the vectors after those a process holds), not sorted.
        columns = ["tenant", "user_id", "kind", "model", "seq"]
        op.create_index("mem_embeddings_seq", "mem_embeddings", columns, if_not_exists=True)
        _vector_snapshots()
    else:
        for name, spec in FTS_TABLES.items():
            op.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5({spec})")


def _messages(pg: bool) -> None:
    time, count, serial = _types(pg)
    full_text = [
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR, sa.Computed("to_tsvector('english', search_text)", persisted=True)),
    ]
    op.create_table(
        "mem_messages",
        _key("seq", count, pg, autoincrement=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("speaker", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("at", time, nullable=False),
        sa.Column("dates", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("created_at", time, nullable=False),
        *(full_text if pg else []),
        sa.UniqueConstraint("tenant", "user_id", "id"),
        if_not_exists=True,
        **serial,
    )
    op.create_index(
        "mem_messages_session", "mem_messages", ["tenant", "user_id", "session_id", "idx"], if_not_exists=True
    )
    op.create_table(
        "mem_speakers",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("speaker", sa.Text, primary_key=True),
        if_not_exists=True,
    )


def _vector_snapshots() -> None:
    """PostgreSQL: a user's vector matrix saved as one row (SQLite keeps it in a file beside the database)."""
    op.create_table(
        "mem_vector_snapshots",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_owner", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("ids", sa.Text, nullable=False),
        sa.Column("matrix", postgresql.BYTEA, nullable=False),
        sa.Column("token", sa.Text, nullable=False, server_default=""),
        if_not_exists=True,
    )
    _add_missing("mem_vector_snapshots", "token", "text NOT NULL DEFAULT ''")


def _add_missing(table: str, column: str, ddl: str) -> None:
    """Add a column that a table made by an earlier version of the stores lacks (the table is declared whole)."""
    if _postgres():
        op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ddl}")
        return
    try:
        present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    except sa.exc.NoSuchTableError:  # replayed without a database (store/schema.py): nothing to inspect
        return
    if column not in present:
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def downgrade() -> None:
    if not _postgres():
        for name in FTS_TABLES:
            op.execute(f"DROP TABLE IF EXISTS {name}")
    for table in reversed(TABLES):
        op.drop_table(table, if_exists=True)
