"""The deploy files (Dockerfile, compose.yaml, deploy/k8s) and the commands they run, outside Docker."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "acceptance"))  # server_process: ingestd as subprocesses
