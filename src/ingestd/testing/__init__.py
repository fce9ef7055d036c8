"""What the chaos tests and the benchmarks both drive: ingestd as subprocesses wired to the provider simulator
(``processes``), pipelines whose every step calls the simulator (``sim_pipelines``), the chaos run and its tally
(``chaos``, ``chaos_tally``), and faults on a network lab (``chaos_faults``, ``netlab``).

``tests/chaos`` imports it, and so do the command-line benchmarks in ``bench/`` (tests never import ``bench/``).
Nothing else in ``ingestd`` imports it (``.importlinter``).
"""
