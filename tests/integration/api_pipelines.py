"""Test pipelines for the API tests (also loaded by the acceptance servers through ``INGESTD_PIPELINE_MODULES``).

``checksum``: takes files; its result lists each file's name, size and SHA-256 as the worker read it back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline


class ChecksumInput(BaseModel):
    label: str = ""


async def run_checksum(ctx: Context, inp: ChecksumInput) -> JSON:
    async def digest() -> list[JSON]:
        out: list[JSON] = []
        for f in ctx.job.files:
            data = Path(await ctx.file_path(f)).read_bytes()
            out.append({"name": f.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "meta": f.meta})
        return out

    return {"label": inp.label, "files": await ctx.step("digest", digest)}


CHECKSUM = Pipeline(
    name="checksum", input_model=ChecksumInput, run=run_checksum, accepts_files=True, description="hashes files"
)
PIPELINES = [CHECKSUM]
