"""The client's errors: ``ApiError`` (the server answered with a problem) and ``WaitTimeout`` (a deadline passed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingestd_client.types import RemoteJob


class ApiError(Exception):
    """The server answered with an error; ``problem`` holds its RFC 9457 members."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem

    @property
    def code(self) -> str:
        return str(self.problem.get("code", ""))


class WaitTimeout(TimeoutError):
    """The deadline passed before the job finished; ``job`` is the last state seen."""

    def __init__(self, job: RemoteJob | None) -> None:
        super().__init__(f"job {job.id if job else '?'} did not finish before the deadline")
        self.job = job
