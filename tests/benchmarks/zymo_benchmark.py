"""Model-quality benchmark on a real multi-species alignment: Zymoseptoria tritici IPO323 and
twelve other genomes (Debian's maffilter-examples), judged by stratified class pairs.

Runs config/examples/zymo.yaml through the workflow (the reference, its gene models and the MAF
from file: URLs; alignment arrays; phyloFit on four-fold degenerate sites and phyloP; tiling
with chromosomes 10 and 11 held out; pretraining of an alignment-aware masked LM and of the
single-sequence recipe; labelled SNVs from the held-out genes; scoring with the Markov baseline
and phyloP beside the models; the comparison report), then prints, for every class pair, the
AUROC of each score with its 95% bootstrap interval, overall and within codon positions, beside
the trivial codon-position baseline.

    python tests/benchmarks/zymo_benchmark.py                 # the full run (about an hour on 2 cores)
    python tests/benchmarks/zymo_benchmark.py --max-steps 20 --per-class 60   # plumbing check (.ci/run)
        [--markdown docs/benchmarks/zymo.md]

--max-steps / --per-class make a different run, in its own directory (.cache/zymo_quick): its
figures say nothing about the models.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from stratified import model_line, report  # noqa: E402  (beside this script)

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default=str(REPO / "config/examples/zymo.yaml"))
    parser.add_argument("--directory", default="", help="working directory (default: the checkout; "
                                                        ".cache/zymo_quick with overrides)")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--max-steps", type=int, default=0, help="override the pretraining steps (plumbing checks)")
    parser.add_argument("--per-class", type=int, default=0, help="override the SNVs drawn per class")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    overridden = bool(args.max_steps or args.per_class)
    run = Path(args.directory or (REPO / ".cache/zymo_quick" if overridden else REPO))
    run.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(REPO / "tests/fetch_test_data.sh"), "zymo"], check=True,  # into the checkout
                   env={**os.environ, "GENOFM_PYTHON": sys.executable})
    config = yaml.safe_load(Path(args.configfile).read_text())
    configfile = Path(args.configfile).resolve()
    if run.resolve() != REPO.resolve():  # the data stay in the checkout's .cache/testdata
        for settings in (config["genomes"]["zymo"], config["genomes"]["zymo"]["annotation"],
                         config["genomes"]["zymo"]["alignment"]):
            settings["source"] = settings["source"].replace("file:.cache", f"file:{REPO}/.cache")
    if overridden or run.resolve() != REPO.resolve():  # a modified copy, run elsewhere
        for model in config["models"].values():
            if args.max_steps:
                training = model["training"]
                training.update(max_steps=args.max_steps, warmup_steps=min(training["warmup_steps"], args.max_steps // 2))
                for key in ("eval_every", "checkpoint_every", "metrics_every", "log_every"):
                    training[key] = min(training[key], args.max_steps)
        for callset in config["variants"].values():
            if args.per_class:
                callset["labelled_snvs"]["per_class"] = args.per_class
        if overridden:
            config["genomes"]["zymo"]["alignment"]["neutral_sites"] = 20_000
        configfile = run / "zymo_benchmark_config.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    callset, spec = next(iter(config["variants"].items()))
    genome, models = spec["genome"], spec["models"]
    targets = [f"results/{genome}/comparisons/{callset}/class_pairs.tsv"]
    targets += [f"results/{genome}/variants/{m}/{callset}/findings.tsv" for m in models]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--configfile",
               str(configfile), "--directory", str(run), "--cores", args.cores, *targets]
    print("running:", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started

    snvs = pd.read_csv(run / f"results/{genome}/variants/{models[0]}/{callset}.tsv", sep="\t", usecols=["class"])
    facts = [f"Zymoseptoria tritici IPO323, held-out chromosomes 10 and 11: {len(snvs)} SNVs "
             f"({', '.join(f'{c} {n}' for c, n in snvs['class'].value_counts().sort_index().items())})"]
    facts += [model_line(run, m) for m in models]
    print("\n".join(facts))
    print(f"this run's workflow wall time {wall / 60:.1f} min (jobs whose outputs were up to date did not run)")
    report(run, genome, callset, models, facts, args.markdown,
           "msa: the alignment-aware model; conv: the single-sequence model; phyloP and Markov on the same SNVs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
