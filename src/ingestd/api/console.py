"""Terminal output of the client-side CLI commands: a live progress bar and a jobs table (rich).

Progress and tables go to stderr when they are decoration (``--follow``), so stdout stays the result JSON a
script can pipe; the jobs table is the command's output and goes to stdout.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ingestd.client import Client, ClientEvent, RemoteJob

STATUS_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "partial": "magenta",
    "failed": "red",
    "canceled": "dim",
}


class _PaceColumn(ProgressColumn):
    """Time left at the job's own pace, as the API's ``eta_seconds``: ``done`` items took ``took`` seconds (server
    time from ``job.started`` to the count's ``job.progress``), so the rest take ``took * left / done`` from when
    the count arrived, counting down until the next one (rich's own column waits for two samples, then stalls)."""

    def render(self, task: Task) -> Text:
        took, arrived = task.fields.get("took"), task.fields.get("arrived")
        if task.finished:
            return Text("0:00:00", style="progress.remaining")
        if took is None or arrived is None or not task.completed or not task.total:
            return Text("-:--:--", style="progress.remaining")
        left = took * (task.total - task.completed) / task.completed - (time.monotonic() - arrived)
        if left <= 0:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(round(left), 60)
        return Text(f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}", style="progress.remaining")


def _at(event: ClientEvent) -> datetime | None:
    try:
        return datetime.fromisoformat(event.at) if event.at else None
    except ValueError:
        return None


class _Bar:
    """One rich progress task that follows a job's events: stage as the label, items done/total as the bar."""

    def __init__(self, progress: Progress, job: RemoteJob) -> None:
        self.progress = progress
        stage = job.progress.get("stage") or job.status
        total = job.progress.get("total") or None
        self.task: TaskID = progress.add_task(str(stage), total=total, completed=job.progress.get("done") or 0)
        self.started: datetime | None = None
        self.counted: tuple[int, int | None] | None = None  # the last map's (done, total), shown at a failed end

    def apply(self, event: ClientEvent) -> None:
        data = event.data
        if event.type == "job.started":
            self.started = _at(event)
        if event.type == "job.progress":
            total = data.get("total") or None
            at, done = _at(event), data.get("done", 0)
            took = (at - self.started).total_seconds() if at and self.started and done else None
            self.progress.update(self.task, description=str(data.get("stage", "")), total=total, completed=done,
                                 took=took, arrived=time.monotonic())  # fmt: skip
            self.counted = (done, total)
        elif event.type == "step.started" and "[" not in str(data.get("key", "[")):
            # a whole-stage step (not one item of a fan-out): a new stage without a count
            self.progress.reset(self.task, description=str(data["key"]), total=None)
        elif event.type in ("job.started", "job.queued", "job.released"):
            self.progress.update(self.task, description=event.type.removeprefix("job."))
        elif event.type == "job.finished":
            status = str(data.get("status", "finished"))
            label = f"[{STATUS_STYLES.get(status, 'default')}]{status}[/]"
            if status == "succeeded":  # only success fills the bar: a failed job shows how far it got
                task = self.progress.tasks[0]
                self.progress.update(self.task, description=label, total=task.total or 1, completed=task.total or 1)
            elif self.counted is not None:  # how far the last map got, not a later stage's empty count
                self.progress.update(self.task, description=label, completed=self.counted[0], total=self.counted[1])
            else:
                self.progress.update(self.task, description=label)


def follow(client: Client, job: RemoteJob, *, deadline: float | None = None, console: Console | None = None
           ) -> RemoteJob:  # fmt: skip
    """Show a live progress bar (stage, items done/total, ETA) from the job's event stream until it ends.

    Returns the job as the server describes it once finished.
    """
    if job.terminal:
        return job
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ETA"),
        _PaceColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        bar = _Bar(progress, job)
        for event in client.events(job.id, deadline=deadline):
            bar.apply(event)
            if event.type == "job.finished":
                break
    return client.get(job.id)


def problem_lines(job: RemoteJob, result: dict[str, Any] | None = None) -> list[str]:
    """What went wrong, for stderr: a failed job's stage and reason, or a partial job's failed items."""
    if job.status == "partial":
        failed = (result or {}).get("failed_items") or []
        lines = [f"job {job.id} partial: {len(failed)} item(s) failed"]
        for item in failed[:10]:
            error = item.get("error") or {}
            lines.append(f"  {item.get('key')}: {error.get('reason') or error.get('detail') or 'failed'}")
        return lines + ([f"  ... and {len(failed) - 10} more"] if len(failed) > 10 else [])
    error = job.error or {}
    stage = error.get("stage") or "?"
    reason = error.get("reason") or error.get("detail") or error.get("title") or "no reason given"
    code = f" ({error['code']})" if error.get("code") else ""
    return [f"job {job.id} {job.status} at stage {stage}: {reason}{code}"]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _progress_cell(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    stage = progress.get("stage") or ""
    if progress.get("total"):
        return f"{stage} {progress.get('done', 0)}/{progress['total']}".strip()
    return str(stage)


def _error_cell(job: dict[str, Any]) -> str:
    error = job.get("error") or {}
    if not error:
        return ""
    reason = str(error.get("reason") or error.get("detail") or error.get("title") or "")
    return f"{error['stage']}: {reason}" if error.get("stage") else reason


def jobs_table(page: dict[str, Any], console: Console | None = None) -> None:
    """Print one page of ``GET /v1/jobs`` as a table, with the cursor of the next page when there is one."""
    out = console or Console()
    if not out.is_terminal:
        out.width = max(out.width, 160)  # piped: never cut job ids short to fit a pretend 80 columns
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    for name in ("pipeline", "status", "progress", "created", "finished"):
        table.add_column(name)
    table.add_column("error", overflow="ellipsis", no_wrap=True, max_width=60)
    for job in page.get("jobs", []):
        status = str(job.get("status", ""))
        table.add_row(
            _cell(job.get("id")),
            _cell(job.get("pipeline")),
            f"[{STATUS_STYLES.get(status, 'default')}]{status}[/]",
            _progress_cell(job),
            _cell(job.get("created_at"))[:19].replace("T", " "),
            _cell(job.get("finished_at"))[:19].replace("T", " "),
            _error_cell(job),
        )
    out.print(table)
    if page.get("next_cursor"):
        out.print(f"more: --cursor {page['next_cursor']}")


__all__ = ["follow", "jobs_table", "problem_lines"]
