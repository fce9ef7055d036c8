"""Structured logs: stdlib ``logging`` with a JSON formatter (``INGESTD_LOG_FORMAT=json``) or plain text.

Every record logged while a job or step runs carries that job's context (``job_id``, ``pipeline``, ``stage``,
``step``...) and the current trace and span ids, whoever logs it (the runner, a pipeline, a provider client):
the context lives in a ``ContextVar`` that ``telemetry.job_span`` / ``step_span`` set, and a filter copies it onto
each record. Fields given with ``extra=`` win.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
from opentelemetry import trace

_EMPTY: Mapping[str, Any] = MappingProxyType({})
LOG_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("ingestd_log_context", default=_EMPTY)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` or the context filter.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block (in this task and tasks it starts)."""
    token = LOG_CONTEXT.set({**LOG_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        LOG_CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Copies the job/step context and the current trace ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in LOG_CONTEXT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid and not hasattr(record, "trace_id"):
            record.trace_id = f"{ctx.trace_id:032x}"
            record.span_id = f"{ctx.span_id:016x}"
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: what ``extra=`` and the context filter added."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(record_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines with the structured fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        fields.pop("span_id", None)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def configure_logging(fmt: str = "text", level: str | int = "INFO") -> logging.Handler:
    """Send the ``ingestd`` loggers' records to stderr as JSON lines or text. Safe to call again (replaces the
    handler it installed before)."""
    if fmt not in ("json", "text"):
        raise ValueError(f"INGESTD_LOG_FORMAT must be json or text, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.set_name("ingestd")
    logger = logging.getLogger("ingestd")
    for old in [h for h in logger.handlers if h.get_name() == "ingestd"]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False
    return handler
