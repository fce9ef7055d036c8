"""PNG charts for docs/benchmarks.md from the JSON the benchmark scripts write.

    .venv/bin/python bench/plots.py [--replay bench/out/replay.json] [--chaos bench/out/chaos.json] [--out docs/img]

A missing input is skipped with a note, so the charts of the scripts that did run are still drawn.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here; files only
import matplotlib.pyplot as plt

TIMEOUT = 120.0
COLOURS = {"sync": "#c0392b", "ingestd": "#2471a3", "sqlite": "#2471a3", "postgres": "#7d3c98"}
COLOURS["postgres + restart"] = "#d68910"


def _short(name: str) -> str:
    return "sync" if name.startswith("synchronous") else "ingestd"


def replay_done(doc: dict[str, Any], path: Path) -> None:
    """Share of uploads processed over time, per system, with the 120 s cutoff."""
    fig, ax = plt.subplots(figsize=(7, 4))
    total = len(doc["uploads"])
    for result in doc["results"]:
        key = _short(result["name"])
        times = sorted(result["finished"].values())
        shares = [(i + 1) / total for i in range(len(times))]
        ax.step([0.0, *times], [0.0, *shares], where="post", label=result["name"], color=COLOURS[key])
    ax.axvline(TIMEOUT, color="grey", linestyle="--", linewidth=1)
    ax.text(TIMEOUT, 0.5, " 120 s\n timeout", color="grey")
    ax.set_xlabel("seconds after the burst started (simulated)")
    ax.set_ylabel("uploads processed")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("Incident replay: when each upload was processed")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replay_costs(doc: dict[str, Any], path: Path) -> None:
    """Provider calls made against needed, and connection-seconds held by clients."""
    results = doc["results"]
    names = [_short(r["name"]) for r in results]
    colours = [COLOURS[n] for n in names]
    fig, (calls, held) = plt.subplots(1, 2, figsize=(8, 3.6))
    calls.bar(names, [r["calls_made"] for r in results], color=colours, label="made")
    calls.bar(names, [r["calls_needed"] for r in results], color="none", edgecolor="black", hatch="//", label="needed")
    calls.set_title("provider calls (made vs needed)")
    calls.legend(fontsize=8)
    held.bar(names, [r["connection_seconds"] for r in results], color=colours)
    held.set_yscale("log")
    held.set_title("connection-seconds held by clients (log)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chaos_resume(reports: list[dict[str, Any]], path: Path) -> None:
    """How long each job orphaned by a SIGKILL waited until another worker resumed it, per database."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    waits = [w for r in reports for w in r["resume_waits"]] or [0.0]
    low, top = min(5.0, min(waits)), max(16.0, max(waits) + 0.5)
    bins = [low + i * 0.25 for i in range(int((top - low) / 0.25) + 2)]
    for report in reports:
        name = report["database"]
        label = f"{name} ({report['kills']} kills, {len(report['resume_waits'])} jobs)"
        ax.hist(report["resume_waits"], bins=bins, histtype="step", linewidth=1.6, label=label, color=COLOURS.get(name))
    ax.axvline(15.0, color="grey", linestyle="--", linewidth=1)
    ax.text(15.0, ax.get_ylim()[1] * 0.9, " goal: < 15 s", color="grey")
    ax.set_xlabel("seconds from the kill until the job was resumed (lease 10 s)")
    ax.set_ylabel("jobs")
    ax.set_title("Chaos: waits to resume after a SIGKILL")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _load(path: str) -> Any:
    file = Path(path)
    if not file.exists():
        print(f"skipped: {file} not found (run the script that writes it first)")
        return None
    return json.loads(file.read_text())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replay", default="bench/out/replay.json")
    ap.add_argument(
        "--chaos",
        nargs="*",
        default=["bench/out/chaos-both.json", "bench/out/chaos-sqlite.json", "bench/out/chaos-postgres.json"],
        help="chaos.py outputs; a later file's run on a database replaces an earlier one's",
    )
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if (replay := _load(args.replay)) is not None:
        replay_done(replay, out / "replay-done.png")
        replay_costs(replay, out / "replay-costs.png")
        written += ["replay-done.png", "replay-costs.png"]
    runs: dict[str, Any] = {}
    for path in args.chaos:
        runs.update({report["database"]: report for report in _load(path) or []})
    if runs:
        chaos_resume(list(runs.values()), out / "chaos-resume.png")
        written.append("chaos-resume.png")
    for name in written:
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
