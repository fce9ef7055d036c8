"""The pipeline registry: ``build_pipelines(settings)`` gives every pipeline this process can run, by name.

Built-in pipelines are listed in ``_builtin``; user pipelines come from ``Settings.pipeline_modules``
(``"package.module:attribute"``, where the attribute is a ``Pipeline``, a list of them, or a function taking
``Settings`` and returning either). Whoever builds them closes them with ``close_pipelines`` at shutdown (the worker
command, the app's lifespan): the memory graph's pool or connections, the providers' HTTP clients.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ingestd.pipeline import DeferredRun, Pipeline
from ingestd.pipelines import demo
from ingestd.settings import Settings


def _builtin(settings: Settings) -> list[Pipeline]:
    pipelines = [demo.DEMO, demo.NOOP]
    # Team pipelines: one line each, importing inside this function so a heavy model loads only when used.
    pipelines.append(importlib.import_module("ingestd.pipelines.audio").build(settings))  # audio engineer
    pipelines.append(importlib.import_module("ingestd.pipelines.memory").build(settings))  # memory engineer
    if settings.graphiti_neo4j_uri or settings.graphiti_kuzu_path:  # graphiti engineer: optional, configured only
        try:  # pip install 'ingestd[graphiti]'
            pipelines.append(importlib.import_module("ingestd.pipelines.graphiti").build(settings))
        except ImportError as exc:
            logging.getLogger(__name__).warning("graphiti pipeline not registered: %s", exc)
    return pipelines


def load_pipeline_object(path: str, settings: Settings) -> list[Pipeline]:
    """Import ``"package.module:attribute"`` and return the pipelines it names.

    Raises:
        ValueError: the path is malformed or does not name pipelines.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"pipeline module {path!r} is not of the form 'package.module:attribute'")
    obj: Any = getattr(importlib.import_module(module_name), attribute)
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj(settings)
    found: Iterable[Any] = [obj] if isinstance(obj, Pipeline) else obj
    pipelines = list(found)
    if not all(isinstance(p, Pipeline) for p in pipelines):
        raise ValueError(f"{path!r} does not name a Pipeline, a list of them, or a function returning them")
    return pipelines


def build_pipelines(settings: Settings) -> dict[str, Pipeline]:
    """Every pipeline by name: built-in ones, then ``settings.pipeline_modules`` (which may replace them)."""
    pipelines = {p.name: p for p in _builtin(settings)}
    for path in settings.pipeline_modules:
        pipelines.update({p.name: p for p in load_pipeline_object(path, settings)})
    return pipelines


async def close_pipelines(pipelines: Mapping[str, Pipeline]) -> None:
    """Close what the pipelines' implementations hold open: ``aclose()`` of each one's instance (a bound ``run``'s
    ``__self__``, a ``DeferredRun`` built by a job), once each. One never built (no job ran) holds nothing and is not
    built now. A failure is logged and the others are still closed: this runs at shutdown."""
    closed: set[int] = set()
    for pipeline in pipelines.values():
        run: Any = pipeline.run
        owner = run.built if isinstance(run, DeferredRun) else getattr(run, "__self__", None)
        close = getattr(owner, "aclose", None)
        if close is None or id(owner) in closed:
            continue
        closed.add(id(owner))
        try:
            await close()
        except Exception:
            logging.getLogger(__name__).exception("closing the %s pipeline failed", pipeline.name)


__all__ = ["build_pipelines", "close_pipelines", "load_pipeline_object"]
