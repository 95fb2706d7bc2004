"""The stratified model-quality table the benchmarks print (and write as markdown): every class
pair overall and within codon positions, each score's AUROC with its bootstrap interval beside
phyloP, the Markov baseline and the trivial codon-position baseline (read off the workflow's
findings.tsv), then paired differences between scores on the same SNVs (genofm.findings).
Shared by mtb_benchmark.py and zymo_benchmark.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from genofm.findings import MIN_PER_STRATUM, STRATA, score_differences  # noqa: E402
from genofm.variant_report import SCORES  # noqa: E402
from markdown_table import write_markdown  # noqa: E402

# (positive, negative, stratum): AUROC of the first class as the more disruptive
ROWS = [("stop_gained", "synonymous", "all"), ("stop_gained", "synonymous", "codon position 3"),
        ("missense", "synonymous", "all"), ("missense", "synonymous", "codon positions 1-2"),
        ("missense", "synonymous", "codon position 3"), ("stop_gained", "missense", "all"),
        ("coding", "intergenic", "all")]
MODEL_SCORES = ("llr", "lldiff", "influence", "emb_cosine")  # compared pairwise (emb_l2 follows emb_cosine)


def model_line(run: Path, model: str) -> str:
    summary = json.loads((run / f"results/models/{model}/summary.json").read_text())
    return (f"{model}: {summary['parameters']:,} parameters, {summary['steps']} steps, pretraining "
            f"{summary['seconds'] / 60:.1f} min on {summary['hardware']}; final val loss "
            f"{summary['final_val_loss']:.4f} (unigram entropy {summary['unigram_entropy']:.4f})")


def report(run: Path, genome: str, callset: str, models: list[str], facts: list[str], markdown: Path | None,
           footnote: str) -> None:
    """Print the stratified table and the paired differences; with `markdown`, also write them
    there and beside it (`<stem>_paired.md`)."""
    findings = {m: pd.read_csv(run / f"results/{genome}/variants/{m}/{callset}/findings.tsv", sep="\t")
                for m in models}
    columns = score_columns(findings)
    header = ["class pair", "stratum", *(label for *_, label in columns)]
    table = [[f"{p} vs {n}", stratum, *(auroc_text(findings[m], p, n, stratum, score, field)
                                        for m, score, field, _ in columns)] for p, n, stratum in ROWS]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    print("\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in [header, *table]))
    paired = paired_comparisons(run, genome, callset, models)
    print("\nPaired differences (same SNVs, same bootstrap resamples): AUROC of the first score minus the "
          "second's, 95% interval")
    print("\n".join("  ".join(row) for row in paired))
    if markdown:
        write_markdown(markdown, "; ".join(facts) + ". AUROC of the first class as more disruptive (each score "
                       "signed so), 95% bootstrap interval. Within a codon-position stratum the trivial "
                       "codon-position baseline is 0.5 by construction.", header, table, footnote)
        write_markdown(markdown.with_name(f"{markdown.stem}_paired.md"),
                       "Paired comparisons on the same SNVs (same bootstrap resamples for both scores): AUROC of the "
                       "first score minus the second's, 95% interval: one score beats the other only where the "
                       "interval excludes 0.", ["class pair", "stratum", "scores", "difference"], paired)


def score_columns(findings: dict[str, pd.DataFrame]) -> list[tuple[str, str | None, str, str]]:
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


def paired_comparisons(run: Path, genome: str, callset: str, models: list[str]) -> list[list[str]]:
    """Per stratified pair: the first model's first score against phyloP, the Markov baseline and
    every other model score, and each model's scores against each other."""
    keys = ["chrom", "pos", "ref", "alt", "class", "codon_position"]
    merged, model_columns = None, []
    for m in models:
        table = pd.read_csv(run / f"results/{genome}/variants/{m}/{callset}.tsv", sep="\t")
        columns = [c for c in MODEL_SCORES if c in table and table[c].notna().any()]
        model_columns.append([f"{m} {c}" for c in columns])
        extra = [c for c in ("phylop", "markov") if merged is None and c in table and table[c].notna().any()]
        part = table[keys + columns + extra].rename(columns={c: f"{m} {c}" for c in columns})
        merged = part if merged is None else merged.merge(part, on=keys)
    scores = {c: SCORES[c.split()[-1]] for c in merged.columns if c not in keys}
    lead = model_columns[0][0]
    wanted = [(lead, other) for other in scores if other != lead and other not in model_columns[0]]
    wanted += [(a, b) for columns in model_columns for i, a in enumerate(columns) for b in columns[i + 1:]]
    rows = []
    for positive, negative, stratum in ROWS:
        table = merged
        if positive == "coding":
            table = merged.assign(**{"class": merged["class"].where(merged["class"] == "intergenic", "coding")})
        if stratum != "all":
            table = table[table["codon_position"].isin(STRATA[stratum])]
        if min((table["class"] == c).sum() for c in (positive, negative)) < MIN_PER_STRATUM:
            continue  # as findings.tsv: too few to show a pair there
        diffs = score_differences(table, scores, [(positive, negative)]).set_index(["score_1", "score_2"])
        for first, second in wanted:
            if (first, second) in diffs.index:
                d = diffs.loc[(first, second)]
                a1, a2, low, high = d["auroc_1"], d["auroc_2"], d["ci_low"], d["ci_high"]
            elif (second, first) in diffs.index:
                d = diffs.loc[(second, first)]
                a1, a2, low, high = d["auroc_2"], d["auroc_1"], -d["ci_high"], -d["ci_low"]
            else:
                continue
            rows.append([f"{positive} vs {negative}", stratum, f"{first} - {second}",
                         f"{a1:.3f} - {a2:.3f} = {a1 - a2:+.3f} [{low:+.3f}, {high:+.3f}]"])
    return rows
