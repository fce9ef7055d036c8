# TEMPORARY (not committed): a SQLite store fixture until tests/conftest.py lands.
import pytest
from ingestd.store import open_store

@pytest.fixture
async def store(tmp_path):
    s = await open_store(f"sqlite:///{tmp_path}/db.sqlite")
    yield s
    await s.close()
