"""A test pipeline for source URLs (``INGESTD_PIPELINE_MODULES=source_pipelines:PIPELINES``).

``fetched``: takes files or ``source_urls`` (fetched by the worker before it runs) and lists each file it sees:
name, size, SHA-256 of the bytes read back, content type and meta.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline


class FetchedInput(BaseModel):
    source_urls: list[str] = []


async def run_fetched(ctx: Context, inp: FetchedInput) -> JSON:
    files: list[JSON] = []
    for f in ctx.job.files:
        data = Path(await ctx.file_path(f)).read_bytes()
        files.append({"name": f.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                      "content_type": f.content_type, "meta": f.meta})  # fmt: skip
    return {"files": files}


FETCHED = Pipeline(
    name="fetched", input_model=FetchedInput, run=run_fetched, requires_files=True, description="lists its files"
)
PIPELINES = [FETCHED]
