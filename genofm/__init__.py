"""genofm: genomic foundation models, the shared module behind the Snakemake workflow."""

import os

__version__ = "0.1.0"

# OpenMP threads that spin-wait for each other stall torch on a busy CPU (a shared cluster
# node, a laptop): a training step measured 7x slower at load 8 on 2 cores. Sleeping threads
# cost nothing measurable on an idle machine (tests/benchmarks/train_benchmark.py shows both).
# libgomp reads this once, when torch loads: hence here, before any module imports torch.
# A policy the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
