"""A network lab made by the run itself: hosts in network namespaces on one bridge, a PostgreSQL cluster of its own
on one of them, and faults between two hosts (a cut, random loss, a slow link) with nftables and tc.

Every address is on the lab's bridge (10.231.N.0/24, N from the process id): no traffic leaves the machine, and
the machine's own PostgreSQL (127.0.0.1:5432) is not touched. Needs root, iproute2, nftables and PostgreSQL's
server binaries (Debian's packages; ``make netlab`` installs them). ``tc netem`` is not used: the kernels of this
project's machines do not ship it, so delay is a token bucket (``tbf``) at a low rate and loss is an nftables rule.

    with NetLab() as lab:
        db, worker = lab.host("db"), lab.host("w1")
        pg = lab.postgres(db)            # a fresh cluster listening on db's address
        lab.cut(worker, db)              # every packet between them dropped, both ways (silently: no RST)
        lab.heal(worker)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

TOOLS = ("ip", "nft", "tc", "socat", "runuser")


def missing() -> str | None:
    """Why a lab cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces)"
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"the network lab needs {', '.join(absent)} (make netlab installs iproute2, nftables, socat)"
    if not _pg_bin():
        return "the network lab needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/postgres)"
    return None


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return str(Path(found[-1]).parent) if found else None


def _run(*args: str, ns: str | None = None) -> None:
    command = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(command, check=True, capture_output=True)


@dataclass
class Host:
    """One namespace on the lab's bridge."""

    name: str  # the namespace
    address: str
    link: str  # its end of the veth pair (inside the namespace)
    outside: str  # the other end, on the bridge

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host."""
        return ["ip", "netns", "exec", self.name, *args]


class PgHost:
    """A PostgreSQL cluster of the lab's own, its postmaster running inside a host (trust auth, no fsync)."""

    def __init__(self, host: Host, folder: Path) -> None:
        self.host, self.folder = host, folder
        self.bin = _pg_bin() or ""
        self.data = folder / "data"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "postgres", "postgres")
        self._as_postgres(f"{self.bin}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        subnet = host.address.rsplit(".", 1)[0]
        with open(self.data / "pg_hba.conf", "a") as hba:  # the lab's hosts (only they can reach this address)
            hba.write(f"host all all {subnet}.0/24 trust\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"postgresql://postgres@{host.address}:5432/postgres"
        self.start()

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)

    def start(self, timeout: float = 30.0) -> None:
        settings = {
            "listen_addresses": self.host.address,
            "port": "5432",
            "unix_socket_directories": str(self.folder),
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            # A peer cut off without a word (a partition) holds its backend, and any locks, until TCP notices.
            "tcp_keepalives_idle": "5",
            "tcp_keepalives_interval": "2",
            "tcp_keepalives_count": "3",
        }
        flags = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with open(self.folder / "postgres.log", "ab") as log:
            postgres = ["runuser", "-u", "postgres", "--", f"{self.bin}/postgres", "-D", str(self.data), *flags]
            self.proc = subprocess.Popen(self.host.command(*postgres), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while subprocess.run(
            [f"{self.bin}/pg_isready", "-q", "-h", self.host.address, "-p", "5432"], check=False
        ).returncode:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the lab's PostgreSQL did not start: see {self.folder / 'postgres.log'}")
            time.sleep(0.1)

    def crash(self) -> None:
        """Stop the server at once (``immediate`` shutdown: every backend dropped, recovery on the next start)."""
        if self.proc is not None and self.proc.poll() is None:
            pid = Path(self.data / "postmaster.pid").read_text().split()[0]
            os.kill(int(pid), signal.SIGQUIT)
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        self.crash()


class NetLab:
    """The bridge, its hosts, their faults; everything is removed on exit."""

    made = 0  # labs made by this process: each gets names and a subnet of its own

    def __init__(self) -> None:
        NetLab.made += 1
        n = os.getpid() * 7 + NetLab.made
        self.tag = f"il{n % 100000}"
        self.subnet = f"10.231.{20 + n % 200}"
        self.bridge = f"{self.tag}br"
        self.hosts: dict[str, Host] = {}
        self.folder = Path(tempfile.mkdtemp(prefix="ingestd-netlab-"))
        os.chmod(self.folder, 0o755)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._pg: list[PgHost] = []
        self._made: list[list[str]] = []  # the commands that undo what was made, in order made
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        self.gateway = f"{self.subnet}.1"  # the root namespace, as the hosts see it

    def host(self, name: str) -> Host:
        """A new namespace with one address on the bridge."""
        n = len(self.hosts) + 10
        ns, outside, inside = f"{self.tag}-{name}", f"{self.tag}v{n}", f"{self.tag}h{n}"
        _run("ip", "netns", "add", ns)
        self._made.append(["ip", "netns", "del", ns])
        _run("ip", "link", "set", "lo", "up", ns=ns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        self._made.append(["ip", "link", "del", outside])
        _run("ip", "link", "set", inside, "netns", ns)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "addr", "add", f"{self.subnet}.{n}/24", "dev", inside, ns=ns)
        _run("ip", "link", "set", inside, "up", ns=ns)
        host = Host(ns, f"{self.subnet}.{n}", inside, outside)
        self.hosts[name] = host
        return host

    def postgres(self, host: Host) -> PgHost:
        """A fresh PostgreSQL cluster served from ``host``."""
        pg = PgHost(host, self.folder / f"pg-{host.name}")
        self._pg.append(pg)
        return pg

    def forward(self, port: int) -> str:
        """Make 127.0.0.1:``port`` of the root namespace (a simulator, a receiver) reachable from the hosts;
        returns the address they use (``gateway:port``)."""
        proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind={self.gateway},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        deadline = time.monotonic() + 10
        probe = ["socat", "-u", "/dev/null", f"TCP:{self.gateway}:{port}"]
        while subprocess.run(probe, check=False, capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError(f"socat did not listen on {self.gateway}:{port}")
            time.sleep(0.05)
        return f"{self.gateway}:{port}"

    def spawn(self, host: Host, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """A process inside ``host`` (its output appended to ``log``)."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(host.command(*args), env=env, stdout=out, stderr=subprocess.STDOUT)
        self._procs.append(proc)
        return proc

    # --- faults -------------------------------------------------------------------------------
    def cut(self, host: Host, peer: Host) -> None:
        """Drop every packet between ``host`` and ``peer``, both ways, without a word (no RST, no ICMP)."""
        self._filter(host, peer, "drop")

    def lossy(self, host: Host, peer: Host, percent: int) -> None:
        """Drop ``percent`` % of the packets between ``host`` and ``peer``, at random."""
        self._filter(host, peer, f"numgen random mod 100 < {percent} drop")

    def slow(self, host: Host, kbit: int) -> None:
        """Every packet ``host`` sends waits in a token bucket of ``kbit`` kbit/s (a slow, delaying link)."""
        _run("tc", "qdisc", "replace", "dev", host.link, "root", "tbf", "rate", f"{kbit}kbit", "burst", "4kb",
             "latency", "2s", ns=host.name)  # fmt: skip

    def heal(self, host: Host) -> None:
        """Remove ``host``'s faults."""
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("nft", "delete", "table", "inet", "lab", ns=host.name)
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("tc", "qdisc", "del", "dev", host.link, "root", ns=host.name)

    def _filter(self, host: Host, peer: Host, verdict: str) -> None:
        self.heal(host)
        rules = f"""table inet lab {{
    chain out {{ type filter hook output priority 0; ip daddr {peer.address} {verdict}; }}
    chain in {{ type filter hook input priority 0; ip saddr {peer.address} {verdict}; }}
}}"""
        subprocess.run(host.command("nft", "-f", "-"), input=rules.encode(), check=True, capture_output=True)

    # --- teardown -------------------------------------------------------------------------------
    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for pg in self._pg:
            with contextlib.suppress(Exception):
                pg.stop()
        for undo in reversed(self._made):
            subprocess.run(undo, check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def python() -> list[str]:
    """This interpreter, to run ``ingestd`` inside a host."""
    return [sys.executable, "-m", "ingestd.cli"]
