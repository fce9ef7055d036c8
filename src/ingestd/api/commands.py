"""The API's CLI commands, registered on the ``ingestd`` typer app by ``register(app)``.

Server side: ``serve`` (API + worker in one process), ``api`` (API only), ``keys`` (``key_commands``). Client side (over
HTTP, through ``ingestd.client``): ``submit``, ``jobs``, ``status``, ``result``, ``cancel``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ingestd.api.key_commands import keys_app

if TYPE_CHECKING:
    from ingestd.settings import Settings

Host = Annotated[str | None, typer.Option(envvar="INGESTD_HOST", help="address to listen on (default 127.0.0.1)")]
Port = Annotated[int | None, typer.Option(envvar="INGESTD_PORT", help="port to listen on (default 8000)")]
Database = Annotated[
    str | None,
    typer.Option("--database", "-d", envvar="INGESTD_DATABASE_URL", help="sqlite:///path or postgresql://..."),
]
Url = Annotated[str, typer.Option("--url", envvar="INGESTD_URL", help="the ingestd server")]
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="INGESTD_API_KEY", help="an API key")]
JobId = Annotated[str, typer.Argument(help="the job id")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _settings(**overrides: Any) -> Settings:
    from ingestd.api.command_runtime import settings_from

    return settings_from(**overrides)


def _prepare_database(settings: Settings) -> None:
    """Create the SQLite folder (``./var/`` by default) and refuse open mode off loopback."""
    from ingestd.api import auth
    from ingestd.api.command_runtime import on_store

    try:
        on_store(settings.database_url, lambda store: auth.check_bind(store, settings.host))
    except Exception as exc:
        typer.echo(f"ingestd: {exc}", err=True)
        raise typer.Exit(2) from exc


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything says it is serving; a busy port exits 2 with how to pick another."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a socket in TIME_WAIT is no bar
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        typer.echo(
            f"ingestd: cannot listen on {host}:{port}: {exc.strerror or exc}. Pick another port with --port 8001 or "
            f"INGESTD_PORT=8001 (`make run INGESTD_PORT=8001`).",
            err=True,
        )
        raise typer.Exit(2) from exc
    return sock


def _run_server(settings: Settings, run_worker: bool) -> None:
    import uvicorn

    from ingestd.api.app import create_app

    sock = _listen(settings.host, settings.port)

    # Libraries (httpx logs every request at INFO) say only warnings; ingestd.* follows INGESTD_LOG_LEVEL.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise at start-up
    from ingestd import telemetry

    telemetry.configure_process(settings, worker=False)  # log format, OTEL_* tracing (the API serves /metrics)
    _prepare_database(settings)
    app = create_app(settings, run_worker=run_worker)
    base = f"http://{settings.host}:{settings.port}"
    logging.getLogger("ingestd.api").info(
        "ingestd %s on %s (database %s): API docs %s/docs, dashboard %s/ui",
        "API + worker" if run_worker else "API",
        base,
        settings.database_url,
        base,
        base,
    )
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve(host: Host = None, port: Port = None, database: Database = None) -> None:
    """Run the API and a worker in one process (the embedded default: SQLite under ./var/)."""
    _run_server(_settings(host=host, port=port, database_url=database), run_worker=True)


def api(host: Host = None, port: Port = None, database: Database = None) -> None:
    """Run the API alone (workers run as `ingestd worker`, anywhere, on the same database)."""
    _run_server(_settings(host=host, port=port, database_url=database), run_worker=False)


def _client(url: str, api_key: str | None) -> Any:
    from ingestd.client import Client

    return Client(url, api_key)


@contextlib.contextmanager
def _calling(url: str, api_key: str | None) -> Iterator[Any]:
    """A client for one command; what goes wrong inside is said on stderr and exits 1 (``_fail``)."""
    with _client(url, api_key) as client:
        try:
            yield client
        except Exception as exc:
            raise _fail(exc, client) from exc


def _fail(exc: Exception, client: Any = None) -> typer.Exit:
    """Say what went wrong on stderr (the server's problem, or which URL did not answer); exit status 1."""
    import httpx

    from ingestd.client import ApiError

    if isinstance(exc, ApiError):
        typer.echo(f"error: {exc.status} {exc.problem.get('title', '')}: {exc.problem.get('detail', '')}", err=True)
    elif isinstance(exc, httpx.TransportError):
        url = client.http.base_url if client is not None else "the server"
        typer.echo(f"error: cannot reach {url} ({exc}); is `ingestd serve` running? (--url, INGESTD_URL)", err=True)
    else:
        typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _pipelines_hint(client: Any, exc: Exception) -> None:
    """After a 404 for the pipeline, list the pipelines the server has."""
    from ingestd.client import ApiError

    if not (isinstance(exc, ApiError) and exc.status == 404 and "pipeline" in str(exc.problem.get("detail", ""))):
        return
    try:
        answer = client.http.get("/v1/pipelines")
        names = [p["name"] for p in answer.json()["pipelines"]] if answer.status_code == 200 else []
    except Exception:  # the hint is a courtesy: the error above already said what is wrong
        return
    if names:
        typer.echo(f"pipelines on this server: {', '.join(names)}", err=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


def submit(
    pipeline: Annotated[str, typer.Argument(help="the pipeline to run")],
    files: Annotated[list[Path] | None, typer.Argument(help="input files", exists=True, dir_okay=False)] = None,
    input: Annotated[str, typer.Option("--input", "-i", help="the input as JSON (or @file.json)")] = "{}",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="show progress, then print the result")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="default: a new random key")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Submit a job; with --follow, show live progress (stage, items, ETA) and print the result."""
    from ingestd.api import console

    raw = Path(input[1:]).read_text() if input.startswith("@") else input
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --input is not JSON: {exc}", err=True)
        raise typer.Exit(2) from exc
    with _client(url, api_key) as client:
        try:
            job = client.submit(pipeline, payload, files=list(files or []), idempotency_key=idempotency_key)
            if not follow:
                _print_json(job.data)
                return
            typer.echo(f"job {job.id} {job.status}", err=True)
            job = console.follow(client, job)
            output = client.result(job.id) if job.status in ("succeeded", "partial") else job.data
            _print_json(output)
            if job.status != "succeeded":  # failed, canceled, partial: say why on stderr, exit 1 (docs/api.md)
                for line in console.problem_lines(job, output):
                    typer.echo(line, err=True)
                raise typer.Exit(1)
        except typer.Exit:
            raise
        except Exception as exc:
            failure = _fail(exc, client)
            _pipelines_hint(client, exc)
            raise failure from exc


def jobs(
    pipeline: Annotated[str | None, typer.Option(help="only this pipeline")] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    limit: Annotated[int, typer.Option(help="how many")] = 20,
    cursor: Annotated[str | None, typer.Option(help="the next_cursor of a previous page")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List your jobs, newest first."""
    from ingestd.api import console

    with _calling(url, api_key) as client:
        page = client.jobs(pipeline=pipeline, status=status, limit=limit, cursor=cursor)
    console.jobs_table(page)


def status(job_id: JobId, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Show a job."""
    with _calling(url, api_key) as client:
        _print_json(client.get(job_id).data)


def result(
    job_id: JobId,
    format: Annotated[
        str, typer.Option("--format", help="json, or for an audio job's transcript: srt, vtt, txt")
    ] = "json",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Print a finished job's result (``--format srt|vtt|txt``: an audio job's transcript)."""
    with _calling(url, api_key) as client:
        if format == "json":
            _print_json(client.result(job_id))
        else:
            typer.echo(client.result_text(job_id, format), nl=False)


def cancel(job_id: JobId, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Cancel a job (idempotent)."""
    with _calling(url, api_key) as client:
        _print_json(client.cancel(job_id).data)


def register(app: typer.Typer) -> None:
    """Add the API's commands to the ``ingestd`` app."""
    for command in (serve, api, submit, jobs, status, result, cancel):
        app.command()(command)
    app.add_typer(keys_app, name="keys")


__all__ = ["register"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `ingestd` command")
