"""Sharded scoring on a SLURM cluster: the wall time of scoring one call set in 1 and in 2 shard
jobs, what the split and the join cost, and what the scheduler adds.

    python tests/benchmarks/slurm_shards.py [--records 10000] [--workdir DIR]
        [--markdown docs/benchmarks/slurm_shards.md]

Starts the test cluster of tests/slurm/slurm_cluster.sh (one node, every core of this machine;
as root on Debian), runs the reduced human-scale workflow of human_scale.py (GRCh37 chr20, a
2-layer model) up to the model through `--profile profiles/slurm`, then scores a VCF of real
chr20 positions through the profile in 1 job and in 2 shard jobs (changing the shard count
reruns the scoring jobs only), each job 1 thread. For each: the wall time of the whole
`snakemake` call (submission, the scheduler's status checks every 5 s, the jobs), the jobs'
own times from their benchmark files (the longest shard, the join), and the speed-up. The
overhead is the call's wall time minus the longest scoring job and the join.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from human_scale import CHR20, REPO, SHAPES, configuration  # noqa: E402
from conftest import copy_workflow  # noqa: E402  (tests/, on the path with human_scale)
from markdown_table import write_markdown  # noqa: E402

CLUSTER = REPO / "tests/slurm/slurm_cluster.sh"
PROFILE = ["--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "5",
           "--seconds-between-status-checks", "5"]
MODEL = "results/models/scale/model.safetensors"


def snakemake(workdir: Path, config: dict, targets: list[str], log: Path) -> float:
    """Run the workflow through the SLURM profile; its wall time in seconds."""
    (workdir / "run.yaml").write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "snakemake", *targets, *PROFILE, "--configfile", "run.yaml"],
                              cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"snakemake failed; see {log}:\n" + log.read_text()[-3000:])
    return time.perf_counter() - started


def job_seconds(workdir: Path, pattern: str) -> list[float]:
    return [float(pd.read_csv(f, sep="\t")["s"].iloc[0]) for f in sorted(workdir.glob(f"benchmarks/**/{pattern}"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run here (default: a temporary one)")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    if not CHR20.exists():
        raise SystemExit(f"{CHR20} is missing: run `bash tests/fetch_test_data.sh` first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp) / "run"
        workdir.mkdir(parents=True, exist_ok=True)
        cluster = Path(tmp) / "cluster"
        copy_workflow(workdir)
        config = configuration(workdir, {**SHAPES["reduced"], "records": args.records})
        config["variants"] = {"calls": {**config["variants"]["calls"], "shards": 1}}
        subprocess.run(["bash", "-c", f'source "{CLUSTER}" && slurm_cluster_start "{cluster}"'], check=True)
        try:
            upstream = snakemake(workdir, config, [MODEL, "resources/chr20/genome.fa.gz.fai"], workdir / "upstream.out")
            print(f"upstream (download, tiling, tokens, model) through SLURM: {upstream:.0f} s", flush=True)
            for shards in (1, 2):
                config["variants"]["calls"]["shards"] = shards
                wall = snakemake(workdir, config, ["results/chr20/variants/scale/calls.vcf.gz"],
                                 workdir / f"shards_{shards}.out")
                scoring = job_seconds(workdir, "score_variants_scale_calls_[0-9]*-of-2.tsv") if shards > 1 else \
                    job_seconds(workdir, "score_variants_scale_calls.tsv")
                join = job_seconds(workdir, "score_variants_scale_calls.tsv")[0] if shards > 1 else 0.0
                rows.append({"shards": shards, "wall": wall, "longest": max(scoring), "summed": sum(scoring),
                             "join": join, "overhead": wall - max(scoring) - join})
                print(f"{shards} shard job(s): {wall:.1f} s from snakemake's start to its end; scoring jobs "
                      f"{', '.join(f'{s:.1f}' for s in scoring)} s; join {join:.1f} s", flush=True)
        finally:
            subprocess.run(["bash", "-c", f'source "{CLUSTER}" && slurm_cluster_stop "{cluster}"'])
    one, two = rows
    print(f"2 shards: {one['wall'] / two['wall']:.2f}x the wall time of 1 job "
          f"({one['longest'] / (two['longest'] + two['join']):.2f}x counting the jobs alone); the join "
          f"{two['join']:.1f} s, {100 * two['join'] / two['summed']:.0f}% of the scoring")
    if args.markdown:
        write_markdown(args.markdown,
                       f"The test cluster (tests/slurm/slurm_cluster.sh: one node with this machine's cores), "
                       f"the reduced human-scale model (2 layers x 128) scoring a VCF of {args.records} real GRCh37 "
                       "chr20 positions through `--profile profiles/slurm`, 1 thread per scoring job, status "
                       "checks every 5 s.",
                       ["shard jobs", "wall s (snakemake call)", "longest scoring job s", "scoring jobs summed s",
                        "join s", "scheduler and workflow overhead s", "speed-up"],
                       [[str(r["shards"]), f"{r['wall']:.1f}", f"{r['longest']:.1f}", f"{r['summed']:.1f}",
                         f"{r['join']:.1f}" if r["shards"] > 1 else "", f"{r['overhead']:.1f}",
                         f"{one['wall'] / r['wall']:.2f}x"] for r in rows],
                       "Overhead: the call's wall time minus the longest scoring job and the join (submission, "
                       "status checks, Snakemake's own work); the split costs nothing more (each shard job reads "
                       "its share of whole chunks).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
