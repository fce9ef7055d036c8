"""How long after a revoke each API process refuses the key: two ``ingestd api`` processes on one database.

    .venv/bin/python bench/key_revocation.py [--database postgresql://postgres@127.0.0.1:5432/test] [--rounds 10]

Each round makes a key (``ingestd keys create``), warms both processes' caches with it, revokes it (odd rounds
through process A's ``/v1/admin/keys``, even rounds with ``ingestd keys revoke``), then polls each process every
20 ms until it answers 401. Printed: per way of revoking and process, the median and maximum seconds from the
revoke's start to the first 401. The promise is 5 s (each process caches a key for ``KEY_CACHE_SECONDS`` = 2 s).
The default database is a fresh SQLite file; a PostgreSQL URL must name a migrated database you can write.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import httpx


def ingestd(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "ingestd.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def seconds_to_refusal(url: str, secret: str, since: float) -> float:
    while httpx.get(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {secret}"}).status_code == 200:
        time.sleep(0.02)
    return time.monotonic() - since


def one_round(n: int, urls: list[str], admin: str, env: dict[str, str]) -> dict[str, float]:
    key = json.loads(ingestd("keys", "create", "--tenant", "bench", "--scope", "jobs:read", "--json", env=env))
    for url in urls:
        httpx.get(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {key['secret']}"}).raise_for_status()
    how = "admin API on A" if n % 2 else "ingestd keys revoke"
    since = time.monotonic()  # from the revoke's start (the CLI's own start-up, about 1 s, included)
    if n % 2:
        httpx.post(f"{urls[0]}/v1/admin/keys/{key['id']}/revoke", headers={"Authorization": f"Bearer {admin}"})
    else:
        ingestd("keys", "revoke", key["id"], env=env)
    secret = key["secret"]
    return {f"{how} | {name}": seconds_to_refusal(url, secret, since) for name, url in zip("AB", urls, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ingestd-keys-")
    env = {**os.environ, "INGESTD_DATABASE_URL": args.database or f"sqlite:///{folder}/ingestd.db"}
    admin = ingestd("keys", "create", "--tenant", "ops", "--scope", "admin", env=env).strip()
    ports = [free_port(), free_port()]
    logs = [open(f"{folder}/api-{p}.log", "wb") for p in ports]
    apis = [
        subprocess.Popen([sys.executable, "-m", "ingestd.cli", "api", "--port", str(p)], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
        for p, log in zip(ports, logs, strict=True)
    ]  # fmt: skip
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url in urls:
            wait_up(url)
        samples: dict[str, list[float]] = defaultdict(list)
        for n in range(args.rounds):
            for name, seconds in one_round(n, urls, admin, env).items():
                samples[name].append(seconds)
    finally:
        for api in apis:
            api.terminate()
            api.wait()
    backend = env["INGESTD_DATABASE_URL"].split(":", 1)[0]
    print("| backend | revoked through | process | rounds | median s | max s |\n|---|---|---|---|---|---|")
    for name, values in sorted(samples.items()):
        median, most = statistics.median(values), max(values)
        print(f"| {backend} | {name.replace(' | ', ' | process ')} | {len(values)} | {median:.2f} | {most:.2f} |")


if __name__ == "__main__":
    main()
