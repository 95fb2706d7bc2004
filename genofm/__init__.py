"""genofm: genomic foundation models, the shared module behind the Snakemake workflow."""

import os

__version__ = "0.1.0"

# torch's OpenMP threads (libgomp) spin ~300,000 iterations waiting for work before they
# sleep: on a busy CPU (a shared cluster node, a laptop) they steal the cores the others
# need, and a training step ran 3x slower at load 8 on 2 cores. Sleeping at once
# (OMP_WAIT_POLICY=PASSIVE) fixes that but is 1.8x slower on an idle machine; a short spin
# is about the fastest in both (tests/benchmarks/omp_wait_benchmark.py, docs/benchmarks.md).
# libgomp reads this once, when torch loads: hence here, before any genofm module imports
# torch. A policy the user set is kept.
if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ):
    os.environ["GOMP_SPINCOUNT"] = "10000"
