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
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from markdown_table import write_markdown  # noqa: E402  (beside this script)

# (positive, negative, stratum): the stratified pairs; AUROC of the first class as more disruptive
ROWS = [("stop_gained", "synonymous", "all"), ("stop_gained", "synonymous", "codon position 3"),
        ("missense", "synonymous", "all"), ("missense", "synonymous", "codon positions 1-2"),
        ("missense", "synonymous", "codon position 3"), ("stop_gained", "missense", "all"),
        ("coding", "intergenic", "all")]


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

    findings = {m: pd.read_csv(run / f"results/{genome}/variants/{m}/{callset}/findings.tsv", sep="\t")
                for m in models}
    columns = score_columns(findings)
    table = [[f"{p} vs {n}", stratum, *(auroc_text(findings[m], p, n, stratum, score, field)
                                        for m, score, field, _ in columns)]
             for p, n, stratum in ROWS]
    snvs = pd.read_csv(run / f"results/{genome}/variants/{models[0]}/{callset}.tsv", sep="\t", usecols=["class"])
    lines = [f"Zymoseptoria tritici IPO323, held-out chromosomes 10 and 11: {len(snvs)} SNVs "
             f"({', '.join(f'{c} {n}' for c, n in snvs['class'].value_counts().sort_index().items())})"]
    for m in models:
        summary = json.loads((run / f"results/models/{m}/summary.json").read_text())
        lines.append(f"{m}: {summary['parameters']:,} parameters, {summary['steps']} steps, pretraining "
                     f"{summary['seconds'] / 60:.1f} min on {summary['hardware']}; final val loss "
                     f"{summary['final_val_loss']:.4f} (unigram entropy {summary['unigram_entropy']:.4f})")
    facts = list(lines)  # what the markdown caption says (this run's wall time depends on what was up to date)
    lines.append(f"this run's workflow wall time {wall / 60:.1f} min (jobs whose outputs were up to date did not run)")
    header = ["class pair", "stratum", *(label for *_, label in columns)]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    print("\n".join(lines))
    paired = paired_comparisons(run, genome, callset, models)
    print("\nPaired differences (same SNVs, same bootstrap resamples): AUROC of the first score minus the "
          "second's, 95% interval")
    for row in paired:
        print("  ".join(row))
    if args.markdown:
        write_markdown(args.markdown, "; ".join(facts) + ". AUROC of the first class as more "
                       "disruptive (each score signed so), 95% bootstrap interval. Within a codon-position stratum "
                       "the trivial codon-position baseline is 0.5 by construction.", header, table,
                       "msa: the alignment-aware model's masked LLR; conv: the single-sequence model; phyloP and "
                       "Markov on the same SNVs.")
        write_markdown(args.markdown.with_name(f"{args.markdown.stem}_paired.md"),
                       "Paired comparisons on the same SNVs (same bootstrap resamples for both scores): AUROC of the "
                       "first score minus the second's, 95% interval: one score beats the other only where the "
                       "interval excludes 0.", ["class pair", "stratum", "scores", "difference"], paired)
    return 0


def paired_comparisons(run: Path, genome: str, callset: str, models: list[str]) -> list[list[str]]:
    """The alignment-aware model's LLR against phyloP and against the single-sequence model's
    scores, and those scores against each other, per stratified pair (genofm.findings)."""
    sys.path.insert(0, str(REPO))
    from genofm.findings import STRATA, score_differences
    from genofm.variant_report import SCORES

    keys = ["chrom", "pos", "ref", "alt", "class", "codon_position"]
    tables = [pd.read_csv(run / f"results/{genome}/variants/{m}/{callset}.tsv", sep="\t") for m in models]
    merged = tables[0][keys + ["llr", "phylop", "markov"]]
    for m, table in zip(models[1:], tables[1:]):
        columns = [c for c in ("llr", "lldiff", "influence", "emb_cosine") if table[c].notna().any()]
        merged = merged.merge(table[keys + columns].rename(columns={c: f"{m} {c}" for c in columns}), on=keys)
    scores = {"llr": SCORES["llr"], "phylop": SCORES["phylop"], "markov": SCORES["markov"]}
    scores |= {c: SCORES[c.split()[-1]] for c in merged.columns if " " in c}
    rows = []
    for positive, negative, stratum in ROWS:
        table = merged
        if positive == "coding":
            table = merged.assign(**{"class": merged["class"].where(merged["class"] == "intergenic", "coding")})
        if stratum != "all":
            table = table[table["codon_position"].isin(STRATA[stratum])]
        diffs = score_differences(table, scores, [(positive, negative)])
        wanted = [("llr", "phylop"), ("llr", "markov"), *(("llr", c) for c in scores if " " in c),
                  *((a, b) for a in scores for b in scores if " " in a and " " in b and a < b)]
        name = {"llr": f"{models[0]} llr"}.get
        for first, second in wanted:
            found = diffs[(diffs["score_1"] == first) & (diffs["score_2"] == second)]
            flipped = diffs[(diffs["score_1"] == second) & (diffs["score_2"] == first)]
            if found.empty and flipped.empty:
                continue
            d = found.iloc[0] if len(found) else flipped.iloc[0]
            auroc_1, auroc_2 = (d["auroc_1"], d["auroc_2"]) if len(found) else (d["auroc_2"], d["auroc_1"])
            low, high = (d["ci_low"], d["ci_high"]) if len(found) else (-d["ci_high"], -d["ci_low"])
            rows.append([f"{positive} vs {negative}", stratum, f"{name(first, first)} - {name(second, second)}",
                         f"{auroc_1:.3f} - {auroc_2:.3f} = {auroc_1 - auroc_2:+.3f} [{low:+.3f}, {high:+.3f}]"])
    return rows


def score_columns(findings: dict[str, pd.DataFrame]) -> list[tuple[str, str, str, str]]:
    """(model, score, findings column, label) of every model score, then phyloP, Markov and the
    codon-position baseline (read off the first model's rows)."""
    columns = []
    first = next(iter(findings))
    for model, table in findings.items():
        for score in dict.fromkeys(table["score"]):
            if score != "phylop":
                columns.append((model, score, "auroc", f"{model} {score}"))
    if "phylop" in set(findings[first]["score"]):
        columns.append((first, "phylop", "auroc", "phyloP"))
    columns.append((first, None, "baseline_auroc", "Markov"))
    columns.append((first, None, "codon_baseline_auroc", "codon position"))
    return columns


def auroc_text(findings: pd.DataFrame, positive: str, negative: str, stratum: str, score: str | None,
               field: str) -> str:
    """The AUROC of `positive` above `negative` with its interval ('-' when absent); rows stored
    the other way round are flipped."""
    flipped = False
    rows = findings[(findings["class_a"] == positive) & (findings["class_b"] == negative)]
    if rows.empty:
        rows, flipped = findings[(findings["class_a"] == negative) & (findings["class_b"] == positive)], True
    rows = rows[rows["stratum"] == stratum]
    if score is not None:
        rows = rows[rows["score"] == score]
    if rows.empty or pd.isna(rows[field].iloc[0]):
        return "-"
    low_field, high_field = (("ci_low", "ci_high") if field == "auroc" else
                             (field.replace("auroc", "ci_low"), field.replace("auroc", "ci_high")))
    value, low, high = (float(rows[f].iloc[0]) for f in (field, low_field, high_field))
    if flipped:
        value, low, high = 1 - value, 1 - high, 1 - low
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


if __name__ == "__main__":
    sys.exit(main())
