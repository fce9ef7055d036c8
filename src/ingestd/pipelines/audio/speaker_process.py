"""The ``speakers`` stage's embedding and clustering in a child process, so it runs beside transcription.

Why a process and not a thread: numpy work in another thread of the worker process changes the words
CTranslate2's Whisper gives for the same audio (reproduced with a plain matmul loop beside a transcription);
in a child process it does not (``tests/audio/test_audio_speaker_process.py`` checks a job's words with
diarization on and off are the same). So the voice encoder and the clustering run in one ``spawn``-ed child
(never ``fork``: the worker has threads of its own, and a forked copy of a held lock would hang the child),
started on the first diarized job and kept for the life of the process, so its ~1 s of imports and the
encoder's weights are paid once. One child, one job's speakers at a time: on 2 cores the other core is
Whisper's.

The child ends when the process that started it ends, however it ends (a thread in the child watches its parent:
a pool's worker would otherwise outlive a killed or un-shut-down parent, idle but holding its memory). A child
that dies (killed, out of memory) is replaced on the next call; the call that saw it die fails with a
``TransientError`` and its step is retried. A cancelled job stops waiting at once, but a child already
embedding finishes that job's windows before it takes the next job's (a process pool cannot interrupt a call).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from ingestd import errors

R = TypeVar("R")
_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(1, context, initializer=_watch_parent, initargs=(os.getpid(),))
        return _pool


def _watch_parent(parent: int) -> None:
    """In the child: end it (at once, no clean-up) once ``parent`` is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def run(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` in the child process (``fn`` and ``args`` must pickle: a module-level function, plain
    data); the event loop keeps going meanwhile."""
    pool = _executor()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    except BrokenProcessPool as exc:
        _discard(pool)
        raise errors.TransientError(f"the speakers process ended unexpectedly ({exc})") from exc


def child_pids() -> list[int]:
    """The process ids of the running child (none before the first diarized job): for measuring its CPU."""
    with _lock:
        processes = dict(getattr(_pool, "_processes", None) or {})
    return [pid for pid in processes if pid != os.getpid()]


__all__ = ["child_pids", "run"]
