"""Figures and tables of a scored call set for `snakemake --report`.

From the scores table: score distributions by variant class, the AUROC of every class pair,
scores along the genome and the top variants. From the model: a per-nucleotide in-silico
mutagenesis heatmap of a region (every SNV scored by the masked LLR) and the attention map of
the last layer over the region's first ~100 tokens.
"""

from __future__ import annotations

import itertools
import json
import logging
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pysam  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from .attention_page import attention_maps  # noqa: E402
from .errors import GenofmInputError  # noqa: E402
from .head_effects import HEAD_PREFIX  # noqa: E402
from .plots import save_png  # noqa: E402
from .sequence import BASES  # noqa: E402
from .variant_scoring import VariantScorer, WindowKey  # noqa: E402
from .vcf import Allele, parse_regions  # noqa: E402

log = logging.getLogger(__name__)

# score -> (label, sign that makes "larger = more disruptive")
SCORES = {
    "llr": ("-LLR (masked marginal)", -1.0),
    "pll": ("-PLL difference (masked, covering tokens)", -1.0),
    "lldiff": ("-log-likelihood difference", -1.0),
    "influence": ("-influence on the following bases", -1.0),
    "emb_cosine": ("embedding cosine distance", 1.0),
    "emb_l2": ("embedding L2 distance", 1.0),
    "markov": ("-log-likelihood difference (Markov baseline)", -1.0),
    "phylop": ("phyloP conservation", 1.0),
}


def read_scores(path) -> pd.DataFrame:
    heads = [c for c in pd.read_csv(path, sep="\t", nrows=0).columns if c.startswith(HEAD_PREFIX)]
    table = pd.read_csv(path, sep="\t", dtype={"class": str, "chrom": str, "id": str}, keep_default_na=False,
                        na_values={c: [""] for c in [*SCORES, *heads]})
    table["class"] = table["class"].replace("", "unclassified")
    if "codon_position" in table:  # 1-3, 0 where unknown
        table["codon_position"] = pd.to_numeric(table["codon_position"], errors="coerce").fillna(0).astype(int)
    return table


def score_info(score: str) -> tuple[str, float]:
    """(label, sign that makes "larger = more disruptive") of a score column: SCORES, or a
    trained head's effect (head_<task>), where a drop of the head's output is the disruption."""
    if score.startswith(HEAD_PREFIX):
        return f"-{score.removeprefix(HEAD_PREFIX)} head effect (ALT - REF)", -1.0
    return SCORES[score]


def present_scores(table: pd.DataFrame) -> list[str]:
    heads = [c for c in table.columns if c.startswith(HEAD_PREFIX)]
    return [s for s in [*SCORES, *heads] if s in table and table[s].notna().any()]


def scores_of(table: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """score column -> (label, sign) of every score the table holds."""
    return {score: score_info(score) for score in present_scores(table)}


def class_pair_aurocs(table: pd.DataFrame) -> pd.DataFrame:
    """AUROC of each score for every ordered class pair (first class positive), where both
    classes have scored variants; 0.5 is chance, 1.0 ranks every `positive` above `negative`."""
    rows = []
    classes = sorted(table["class"].unique())
    for score in present_scores(table):
        sign = score_info(score)[1]
        scored = table[table[score].notna()]
        for positive, negative in itertools.permutations(classes, 2):
            pos = scored.loc[scored["class"] == positive, score].to_numpy()
            neg = scored.loc[scored["class"] == negative, score].to_numpy()
            if len(pos) and len(neg):
                y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
                auroc = roc_auc_score(y, sign * np.r_[pos, neg])
                rows.append({"score": score, "positive": positive, "negative": negative,
                             "n_positive": len(pos), "n_negative": len(neg), "auroc": round(float(auroc), 4)})
    return pd.DataFrame(rows, columns=["score", "positive", "negative", "n_positive", "n_negative", "auroc"])


def distribution_panel(table: pd.DataFrame, score: str) -> dict:
    """What one panel of score_distributions.png plots: the title, axis label, each class's values
    with the sign of the label applied (larger = more disruptive) and whether the axis is
    logarithmic (indel distances dwarf those of SNVs)."""
    label, sign = score_info(score)
    classes = sorted(table["class"].unique())
    data = {c: sign * table.loc[(table["class"] == c) & table[score].notna(), score].to_numpy() for c in classes}
    data = {c: d for c, d in data.items() if len(d)}
    values = np.concatenate(list(data.values())) if data else np.zeros(0)
    positive = values[values > 0]
    log_axis = bool(sign > 0 and len(positive) and values.min() >= 0 and values.max() > 10 * np.median(positive))
    return {"title": textwrap.fill(f"{label}: larger = more disruptive", 38), "xlabel": score if sign > 0 else f"−{score}",
            "data": data, "log_axis": log_axis, "linthresh": float(np.quantile(positive, 0.05)) if log_axis else None}


def plot_score_distributions(table: pd.DataFrame, path, title: str) -> None:
    scores = present_scores(table)
    classes = sorted(table["class"].unique())
    fig, axes = plt.subplots(1, max(1, len(scores)), figsize=(4.5 * max(1, len(scores)), 0.45 * len(classes) + 2),
                             squeeze=False)
    for ax, score in zip(axes[0], scores):
        panel = distribution_panel(table, score)
        data = list(panel["data"].values())
        ax.boxplot(data, vert=False, showfliers=False)
        for row, values in enumerate(data, start=1):  # every point, jittered, over the box
            jitter = np.random.default_rng(row).uniform(-0.15, 0.15, len(values))
            ax.scatter(values, row + jitter, s=4, alpha=0.4, color="tab:blue")
        ax.set_yticks(range(1, len(data) + 1), [f"{c} (n={len(d)})" for c, d in panel["data"].items()])
        if panel["log_axis"]:
            ax.set_xscale("symlog", linthresh=panel["linthresh"])
            ax.set_xlim(left=0)
        ax.set_xlabel(panel["xlabel"], fontsize=8)
        ax.set_title(panel["title"], fontsize=9)
    if not scores:
        axes[0][0].text(0.5, 0.5, "no variant could be scored", ha="center")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def training_line(summary_path) -> str:
    """"\nmodel: 1.0M parameters, 2000 steps on <hardware>" from a pretraining summary (the run
    time is in the summary and the report, not here: a figure stays the same on a rerun)."""
    summary = json.loads(Path(summary_path).read_text())
    return f"\nmodel: {summary['parameters'] / 1e6:.2f}M parameters, {summary['steps']} steps on {summary['hardware']}"


def plot_class_aurocs(aurocs: pd.DataFrame, path, title: str) -> None:
    scores = list(dict.fromkeys(aurocs["score"])) or ["none"]
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 4.5), squeeze=False)
    for ax, score in zip(axes[0], scores):
        sub = aurocs[aurocs["score"] == score]
        classes = sorted(set(sub["positive"]) | set(sub["negative"]))
        matrix = np.full((len(classes), len(classes)), np.nan)
        for r in sub.itertuples():
            matrix[classes.index(r.positive), classes.index(r.negative)] = r.auroc
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="RdBu_r")
        for i, j in zip(*np.where(~np.isnan(matrix))):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("negative class")
        ax.set_ylabel("positive class")
        ax.set_title(score_info(score)[0], fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, label="AUROC")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def plot_along_genome(table: pd.DataFrame, path, title: str) -> None:
    scores = present_scores(table)
    fig, axes = plt.subplots(max(1, len(scores)), 1, figsize=(11, 2.4 * max(1, len(scores))), squeeze=False)
    contigs = list(dict.fromkeys(table["chrom"]))
    offsets, edge = {}, 0
    for contig in contigs:  # contigs side by side in VCF order
        offsets[contig] = edge
        edge += int(table.loc[table["chrom"] == contig, "pos"].max()) + 1
    x = table["chrom"].map(offsets) + table["pos"]
    for ax, score in zip(axes[:, 0], scores):
        for c in sorted(table["class"].unique()):
            rows = (table["class"] == c) & table[score].notna()
            ax.scatter(x[rows], score_info(score)[1] * table.loc[rows, score], s=5, label=c)
        ax.set_ylabel(score_info(score)[0], fontsize=8)
        for contig, start in offsets.items():
            ax.axvline(start, color="grey", lw=0.5)
            ax.text(start, 1.0, f" {contig}", transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")
    axes[0, 0].legend(fontsize=7, markerscale=2, loc="upper right")
    axes[-1, 0].set_xlabel("position along the genome (contigs in VCF order)")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def top_variants(table: pd.DataFrame, n: int = 50) -> pd.DataFrame:
    """The n most disruptive scored variants by the first score present (LLR first)."""
    scores = present_scores(table)
    if not scores:
        return table.head(0)
    score = scores[0]
    scored = table[table[score].notna()].copy()
    scored["rank_value"] = score_info(score)[1] * scored[score]
    return scored.sort_values(["rank_value", "record"], ascending=[False, True]).head(n).drop(columns="rank_value")


# --- figures from the model ---------------------------------------------------------------

def figure_region(region: str, table: pd.DataFrame, fasta: pysam.FastaFile, length: int) -> tuple[str, int, int]:
    """(contig, start, end) 0-based: the configured 'chr:start-end', or `length` bases around the
    most disruptive scored SNV (by LLR), or the start of the first contig."""
    if region:
        (contig, ranges), = parse_regions([region]).items()
        if contig not in fasta.references:
            raise GenofmInputError(f"figure region {region!r}: {contig} is not in the reference")
        start, end = ranges[0]
        return contig, start, min(end, fasta.get_reference_length(contig))
    has_llr = "llr" in table and table["llr"].notna().any()
    snvs = table[(table["kind"] == "snv") & table["llr"].notna()] if has_llr else table.head(0)
    if len(snvs):
        top = snvs.sort_values(["llr", "record"]).iloc[0]
        contig = str(top["window"]).rsplit(":", 1)[0]
        center = int(top["pos"]) - 1
    else:
        contig, center = fasta.references[0], length // 2
    size = fasta.get_reference_length(contig)
    start = max(0, min(center - length // 2, size - length))
    return contig, start, min(size, start + length)


def saturation_alleles(fasta: pysam.FastaFile, contig: str, start: int, end: int) -> list[Allele]:
    """All three SNVs at every A/C/G/T position of a region (in-silico mutagenesis)."""
    seq = fasta.fetch(contig, start, end).upper()
    alleles = []
    for i, base in enumerate(seq):
        for alt in BASES:
            if base in BASES and alt != base:
                alleles.append(Allele(record=len(alleles), chrom=contig, pos=start + i, vcf_id=".", ref=base,
                                      alt=alt, ref_chrom=contig))
    return alleles


def ism_score(scorer: VariantScorer) -> str:
    """The score an ISM map shows: the model's likelihood score, or for a next-token model the
    influence where it is defined (it ranks consequences best, README "Model quality")."""
    return "influence" if scorer.scores_influence else scorer.likelihood_score


def ism_matrix(scorer: VariantScorer, contig: str, start: int, end: int) -> tuple[np.ndarray, str]:
    """(4, L) score (`ism_score`) of each base (rows A C G T) at each position, 0 for the ref
    base, and the region's sequence."""
    alleles = saturation_alleles(scorer.fasta, contig, start, end)
    scorer.score(alleles)
    score = ism_score(scorer)
    matrix = np.zeros((len(BASES), end - start))
    for a in alleles:
        matrix[BASES.index(a.alt), a.pos - start] = a.scores.get(score, np.nan)
    return matrix, scorer.fasta.fetch(contig, start, end).upper()


def plot_ism(matrix: np.ndarray, seq: str, contig: str, start: int, path, title: str, score: str = "llr") -> None:
    width = matrix.shape[1]
    fig, axes = plt.subplots(2, 1, figsize=(min(16, 4 + width / 40), 4), sharex=True,
                             gridspec_kw={"height_ratios": [1, 2]})
    axes[0].bar(range(width), -np.nanmean(np.where(matrix == 0, np.nan, matrix), axis=0), width=1.0, color="tab:red")
    axes[0].set_ylabel(f"mean -{score}", fontsize=8)
    limit = np.nanmax(np.abs(matrix)) or 1.0
    image = axes[1].imshow(matrix, aspect="auto", cmap="RdBu", vmin=-limit, vmax=limit, interpolation="nearest")
    axes[1].set_yticks(range(len(BASES)), list(BASES))
    step = max(1, width // 20)
    axes[1].set_xticks(range(0, width, step), [f"{start + i + 1:,}" for i in range(0, width, step)],
                       rotation=45, ha="right", fontsize=7)
    axes[1].set_xlabel(f"{contig} position (ref bases: 0)")
    fig.colorbar(image, ax=axes, fraction=0.02, label=score_info(score)[0].lstrip("-") + ", ALT - REF")
    fig.suptitle(title)
    save_png(fig, path, dpi=110)


def last_layer_attention(scorer: VariantScorer, seq: str, max_tokens: int = 100,
                         window: WindowKey | None = None) -> tuple[np.ndarray | None, list[str]]:
    """Head-averaged attention (L, L) of the last attention layer over <cls> + the first tokens
    of seq; None for a model without attention (all convolutions). `window`: where seq lies on
    the reference (an alignment-aware model reads the aligned bases there)."""
    maps = attention_maps(scorer, seq, max_tokens, window)
    return maps.head_mean(), maps.tokens if maps.weights is not None else []


def plot_attention(attention: np.ndarray | None, tokens: list[str], path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
    if attention is None:
        ax.text(0.5, 0.5, "This model has no attention layer (mixer: conv).", ha="center", va="center")
        ax.set_axis_off()
        save_png(fig, path, dpi=110)
        return
    image = ax.imshow(attention, cmap="viridis", interpolation="nearest")
    step = max(1, len(tokens) // 25)
    ticks = list(range(0, len(tokens), step))
    ax.set_xticks(ticks, [tokens[i] for i in ticks], rotation=90, fontsize=6)
    ax.set_yticks(ticks, [tokens[i] for i in ticks], fontsize=6)
    ax.set_xlabel("attended token (key)")
    ax.set_ylabel("attending token (query)")
    fig.colorbar(image, ax=ax, fraction=0.046, label="attention, mean over heads")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=110)
