"""The ``ingestd`` command: ``migrate`` and ``worker`` (the API adds ``serve``, ``submit``... here too).

Each command is a small function over ``Settings``; options override the ``INGESTD_*`` environment.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from ingestd.api import commands as api_commands
from ingestd.api.command_runtime import run_async, settings_from

if TYPE_CHECKING:
    from ingestd.settings import Settings

# Plain click help (rich_markup_mode=None): typer's rich panels print every flag as `--follow <bool>`.
app = typer.Typer(
    name="ingestd", help="Durable background ingestion for slow AI work.", no_args_is_help=True, rich_markup_mode=None
)

DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", "-d", envvar="INGESTD_DATABASE_URL", help="sqlite:///path or postgresql://..."),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ingestd {version('ingestd')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Durable background ingestion for slow AI work."""


@app.command()
def migrate(database: DatabaseOption = None) -> None:
    """Create or upgrade the database schema."""
    from ingestd.store import open_store

    settings = settings_from(database_url=database)

    async def go() -> None:
        store = await open_store(settings.database_url)
        try:
            await store.migrate()
        finally:
            await store.close()

    run_async(go)
    typer.echo(f"migrated {settings.database_url}")


@app.command()
def worker(
    database: DatabaseOption = None,
    concurrency: Annotated[int | None, typer.Option(help="jobs run at once")] = None,
    pipeline: Annotated[list[str] | None, typer.Option(help="run only these pipelines (repeatable)")] = None,
    worker_id: Annotated[str | None, typer.Option(help="unique id of this worker")] = None,
) -> None:
    """Run a worker: claim jobs and run them until SIGTERM/SIGINT (then hand running jobs over)."""
    settings = settings_from(database_url=database, worker_concurrency=concurrency, pipelines=pipeline or None)
    # Libraries (httpx logs every request at INFO) say only warnings; ingestd.* follows INGESTD_LOG_LEVEL.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ingestd import telemetry

    telemetry.configure_process(settings, worker=True)  # log format, OTEL_* tracing, metrics_port
    run_async(lambda: run_worker(settings, worker_id))


async def run_worker(settings: Settings, worker_id: str | None = None) -> None:
    """Open the store, run a ``Worker`` until a signal asks it to stop, close the pipelines and the store."""
    import asyncio

    from ingestd.pipelines import build_pipelines, close_pipelines
    from ingestd.store import open_store
    from ingestd.worker import Worker

    store = await open_store(settings.database_url)  # migrates to the newest schema
    pipelines = build_pipelines(settings)
    try:
        running = Worker(store, pipelines, settings, worker_id)
        loop = asyncio.get_running_loop()
        stopping: set[asyncio.Task[None]] = set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stopping.add(loop.create_task(running.stop())))
        logging.getLogger("ingestd.worker").info(
            "worker %s running %s on %s", running.worker_id, sorted(running.pipelines), settings.database_url
        )
        await running.run()
    finally:
        await close_pipelines(pipelines)  # the memory graph's pool, providers' clients: after the jobs stopped
        await store.close()


# --help goes to the simulator's own parser, which lists its options.
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def sim(ctx: typer.Context) -> None:
    """Run the provider simulator (`ingestd sim --help` lists its options; docs/providers.md)."""
    from ingestd.sim.server import main as sim_main

    sim_main(ctx.args)


api_commands.register(app)  # serve, api, keys, submit, jobs, status, result, cancel


def main() -> None:
    """Entry point of the ``ingestd`` script."""
    app()


__all__ = ["app", "main", "run_worker", "settings_from"]


if __name__ == "__main__":  # python -m ingestd.cli
    main()
