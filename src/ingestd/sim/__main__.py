from __future__ import annotations

from ingestd.sim.server import main

main()
