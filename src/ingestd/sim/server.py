"""Running the simulator as a process: ``python -m ingestd.sim`` (and ``ingestd sim``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from ingestd.sim.app import create_app
from ingestd.sim.config import SimConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingestd sim",
        description="Provider simulator: Deepgram, OpenAI-compatible chat/transcription/embeddings and a hosted "
        "VAD on loopback, with configurable latency, faults and contention. See docs/providers.md.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--time-scale", type=float, default=None, help="multiply every latency (0.01: 100x faster)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-auth", action="store_true", help="accept calls without an Authorization header")
    parser.add_argument(
        "--config", default=None, help="a JSON config patch, inline or @file.json (same shape as POST /_sim/config)"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The configuration the command line asks for."""
    patch: dict[str, Any] = {}
    if args.config:
        text = Path(args.config[1:]).read_text() if args.config.startswith("@") else args.config
        patch.update(json.loads(text))
    if args.time_scale is not None:
        patch["time_scale"] = args.time_scale
    if args.seed is not None:
        patch["seed"] = args.seed
    if args.no_auth:
        patch["require_auth"] = False
    return SimConfig().patched(patch)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the simulator in the foreground until interrupted."""
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    print(f"ingestd provider simulator on http://{args.host}:{args.port} (time scale {config.time_scale})")
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", lifespan="off")
