"""Glue for the scripts in workflow_scripts/: logging into the rule's log, clean errors.

A bad input (GenofmInputError) ends the job with its message in the log and on stderr, not
with a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable

# Outputs that record measured speed or run time, by file name: the only ones that differ
# between two runs of the same config and code (the determinism and SLURM tests skip them);
# state.json is a pretraining checkpoint's, whose metrics hold tokens_per_s
MEASURED_OUTPUTS = frozenset({"metrics.tsv", "summary.json", "speed.tsv", "state.json"})


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    # Under Snakemake the rule's log file gets everything (the profile shows failed logs);
    # run by hand, messages go to stderr.
    handlers: list[logging.Handler] = (
        [logging.FileHandler(log_path, mode="w")] if log_path else [logging.StreamHandler(sys.stderr)])
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    log = logging.getLogger("genofm")
    if os.environ.get("SLURM_JOB_ID"):  # say where the job ran: the first thing to ask on a cluster
        log.info("SLURM job %s on %s (partition %s, %s CPUs)", os.environ["SLURM_JOB_ID"],
                 os.environ.get("SLURMD_NODENAME", "?"), os.environ.get("SLURM_JOB_PARTITION", "?"),
                 os.environ.get("SLURM_CPUS_PER_TASK", os.environ.get("SLURM_CPUS_ON_NODE", "?")))
    return log


def log_stream():
    """The open stream of the rule's log (stderr when run by hand), flushed: where a child
    process should write so that its lines land after ours in the same file."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.flush()
            return handler.stream
    return sys.stderr


def limit_threads(threads: int) -> None:
    """Use the threads Snakemake gave the job, no more, so that `--cores N` holds: torch's
    pool and the BLAS / OpenMP pools numpy and scikit-learn bring (threadpoolctl)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it the BLAS pools keep their size
        return
    threadpool_limits(threads)


def run_script(main: Callable[[Any], None], smk: Any) -> None:
    """Run main(snakemake) with logging to the rule's first log file."""
    from .errors import GenofmInputError

    log = setup_logging(smk.log[0] if len(smk.log) else None)
    limit_threads(smk.threads)
    started = time.perf_counter()
    try:
        main(smk)
    except GenofmInputError as err:
        log.error("%s", err)
        print(f"genofm: error: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception:  # a bug: its traceback goes into the rule's log too
        log.exception("unexpected error")
        raise
    log.info("done in %.1f s", time.perf_counter() - started)


def run_cli(main: Callable[[], None]) -> None:
    """Run a command-line script: bad input exits 1 with one clear line, no traceback."""
    from .errors import GenofmInputError

    log = setup_logging(None)
    started = time.perf_counter()
    try:
        main()
    except GenofmInputError as err:
        log.error("%s", err)
        sys.exit(1)
    log.info("done in %.1f s", time.perf_counter() - started)
