"""What an ``ingestd`` process imports to start: the API app and the CLI register pipelines by name and input model
(``pipeline.DeferredRun``), so neither imports numpy or a pipeline's stages until a job or a request needs them.
Tests start many such processes: each heavy import there is paid on every start (CONTRIBUTING.md, "Where the time
goes"). A behaviour check on ``sys.modules`` in a fresh interpreter, not a timing."""

from __future__ import annotations

import json
import subprocess
import sys

# A pipeline's stages and what they pull in; the registration modules (``audio/__init__``, ``inputs``) are allowed.
STAGES = (
    "numpy",
    "ingestd.pipelines.audio.run",
    "ingestd.pipelines.audio.channels",
    "ingestd.pipelines.audio.analysis",
    "ingestd.pipelines.audio.speaker_turns",
    "ingestd.pipelines.memory.run",
    "ingestd.pipelines.memory.search",
)

API_START = """
import json, sys
from ingestd.api.app import create_app
from ingestd.pipelines import build_pipelines
from ingestd.settings import Settings

settings = Settings(database_url="sqlite:////nonexistent/ingestd.db")
app = create_app(settings)
pipelines = build_pipelines(settings)  # what the app's lifespan does
app.openapi()
print(json.dumps({"modules": sorted(sys.modules), "pipelines": sorted(pipelines)}))
"""

CLI_HELP = """
import json, sys
from ingestd.cli import app
try:
    app(["--help"], prog_name="ingestd")
except SystemExit:
    pass
print(json.dumps({"modules": sorted(sys.modules)}))
"""


def _started(code: str) -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    answer: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return answer


def test_the_api_app_starts_without_pipeline_stages() -> None:
    """The app with its routes, its OpenAPI document and the pipeline registry: no numpy, no audio or memory stage,
    and no tracing SDK while tracing is off."""
    started = _started(API_START)
    assert {"audio", "memory"} <= set(started["pipelines"])
    assert [m for m in (*STAGES, "opentelemetry.sdk.trace") if m in started["modules"]] == []


def test_the_cli_starts_without_settings_or_pipelines() -> None:
    """``ingestd --help`` lists the commands without pydantic-settings, asyncio, the store or any pipeline."""
    modules = _started(CLI_HELP)["modules"]
    heavy = ("numpy", "pydantic_settings", "asyncio", "ingestd.store", "ingestd.pipelines", "httpx", "fastapi")
    assert [m for m in heavy if m in modules] == []


def test_a_pipeline_resolves_its_stages_on_first_use() -> None:
    """The registry holds a module path: the implementation is built when asked for (a job, ``run.__self__``)."""
    code = """
import json, sys
from ingestd.pipelines import build_pipelines
from ingestd.settings import Settings

run = build_pipelines(Settings())["memory"].run
before = "ingestd.pipelines.memory.run" in sys.modules
owner = type(run.__self__).__name__
print(json.dumps({"modules": [str(before), owner, str("ingestd.pipelines.memory.run" in sys.modules)]}))
"""
    assert _started(code)["modules"] == ["False", "MemoryRun", "True"]


def test_the_api_default_context_size_is_the_recall_default() -> None:
    """``api.memory`` keeps its own copy of the context block's default size so it need not import ``recall``."""
    from ingestd.api import memory as api_memory
    from ingestd.pipelines.memory import recall

    assert api_memory.CONTEXT_WORDS == recall.CONTEXT_WORDS
