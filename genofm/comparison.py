"""Several models' scores of one call set side by side: the class-pair AUROCs of every model
with bootstrap intervals and each model's Markov baseline, the rank correlation between models'
scores, each model's time per 1,000 variants, and one VCF carrying every model's INFO fields
under names that say whose they are (GFM_LLR_<model>).

The scored VCFs of one call set hold the same records in the same order (each job writes every
input record), so merging is a walk through them side by side; a record that differs stops it.
"""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
from scipy.stats import spearmanr

from .errors import GenofmInputError
from .findings import class_pair_findings
from .plots import plt, save_png
from .variant_report import present_scores, score_info, scores_of
from .vcf_writer import write_bgzip_vcf_index

GFM_KEY = re.compile(r"GFM_[A-Z0-9_]+")


def compare_class_pairs(tables: dict[str, pd.DataFrame], seed: int) -> pd.DataFrame:
    """class_pair_findings of every model, one block per model (column `model` first)."""
    blocks = [class_pair_findings(table, scores_of(table), seed=seed).assign(model=model) for model, table in tables.items()]
    out = pd.concat(blocks, ignore_index=True)
    return out[["model", *[c for c in out.columns if c != "model"]]]


def primary_score(table: pd.DataFrame) -> str | None:
    """The model's own likelihood score if it has one (llr, lldiff, influence), else the first."""
    scores = [s for s in present_scores(table) if s not in ("markov", "phylop")]  # not the model's own
    return scores[0] if scores else None


def rank_correlations(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Spearman correlation of every pair of models' primary scores (signed: larger = more
    disruptive) over the alleles both scored."""
    rows = []
    for (a, ta), (b, tb) in itertools.combinations(tables.items(), 2):
        sa, sb = primary_score(ta), primary_score(tb)
        if not sa or not sb:
            continue
        both = ta[["record", "alt", sa]].merge(tb[["record", "alt", sb]], on=["record", "alt"],
                                              suffixes=("_a", "_b")).dropna()
        xa, xb = (both[f"{sa}_a"] if sa == sb else both[sa]), (both[f"{sb}_b"] if sa == sb else both[sb])
        rho = spearmanr(score_info(sa)[1] * xa, score_info(sb)[1] * xb).statistic if len(both) > 2 else np.nan
        rows.append({"model_a": a, "score_a": sa, "model_b": b, "score_b": sb, "n": len(both),
                     "spearman": round(float(rho), 4)})
    return pd.DataFrame(rows, columns=["model_a", "score_a", "model_b", "score_b", "n", "spearman"])


def speed(summaries: dict[str, dict], seconds: dict[str, float]) -> pd.DataFrame:
    """Each model's scoring time per 1,000 alleles (from the job's benchmark: a measurement, so
    this is the one table of the comparison that differs between runs)."""
    rows = [{"model": m, "alleles": s["alleles"], "seconds": round(seconds[m], 2),
             "seconds_per_1000": round(1000 * seconds[m] / max(s["alleles"], 1), 3)} for m, s in summaries.items()]
    return pd.DataFrame(rows)


def plot_comparison(pairs: pd.DataFrame, path, title: str) -> None:
    """Per class pair (rows) the AUROC of each model's scores with its 95% interval, and each
    model's Markov baseline as a grey mark."""
    within = pairs["stratum"].where(pairs["stratum"] != "all", "").str.replace("codon position ", ", codon pos ")
    pairs = pairs.assign(label=pairs["class_a"] + " vs " + pairs["class_b"] + within)
    labels = list(dict.fromkeys(pairs["label"]))
    series = list(dict.fromkeys(zip(pairs["model"], pairs["score"])))
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) * max(1, len(series)) ** 0.5 + 2))
    height = 0.8 / max(1, len(series))
    for i, (model, score) in enumerate(series):
        rows = pairs[(pairs["model"] == model) & (pairs["score"] == score)].set_index("label")
        y = np.array([labels.index(lab) for lab in rows.index]) + (i - (len(series) - 1) / 2) * height
        ax.barh(y, rows["auroc"] - 0.5, left=0.5, height=height * 0.9, label=f"{model}: {score}")
        ax.errorbar(rows["auroc"], y, xerr=[rows["auroc"] - rows["ci_low"], rows["ci_high"] - rows["auroc"]],
                    fmt="none", color="black", lw=0.8)
        ax.scatter(rows["baseline_auroc"], y, marker="|", color="grey", s=60, zorder=3)
    ax.axvline(0.5, color="black", lw=0.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("AUROC of class_a scored above class_b\n(0.5: chance; grey mark: the model's Markov baseline)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def info_key(key: str, model: str) -> str:
    """GFM_LLR of model `my-model` -> GFM_LLR_my_model (a valid INFO key)."""
    return f"{key}_{re.sub(r'[^0-9A-Za-z_.]', '_', model)}"


def merge_vcfs(paths: dict[str, str | Path], out: Path) -> None:
    """One bgzip VCF (+ .tbi) with every model's GFM_* INFO fields renamed per model, from the
    per-model scored VCFs of one call set (same records, same order)."""
    handles = {m: gzip.open(p, "rt") for m, p in paths.items()}
    try:
        headers = {m: read_header(h) for m, h in handles.items()}
        first = next(iter(paths))
        with pysam.BGZFile(str(out), "wb") as sink:
            sink.write(merged_header(headers, first).encode())
            for number, lines in enumerate(itertools.zip_longest(*handles.values()), start=1):
                if None in lines:
                    raise GenofmInputError(f"the scored VCFs {[str(p) for p in paths.values()]} hold different "
                                           "numbers of records")
                sink.write(merged_record(dict(zip(handles, lines)), paths, number).encode())
    finally:
        for h in handles.values():
            h.close()
    write_bgzip_vcf_index(out)


def read_header(handle) -> list[str]:
    lines = []
    for line in handle:
        lines.append(line)
        if line.startswith("#CHROM"):
            return lines
    raise GenofmInputError(f"{handle.name}: no #CHROM line")


def merged_header(headers: dict[str, list[str]], first: str) -> str:
    """The first model's header without its GFM_* INFO and ##genofm_* lines, then every model's
    renamed (##genofm_model_<model>=..., GFM_LLR_<model>)."""
    per_model = re.compile(r"##INFO=<ID=GFM_|##genofm_")
    own = [line for line in headers[first][:-1] if not per_model.match(line)]
    added = []
    for model, lines in headers.items():
        for line in lines:
            info = re.match(r"##INFO=<ID=(GFM_[A-Z0-9_]+),(.*)", line, re.S)
            meta = re.match(r"##(genofm_[a-z_]+)=(.*)", line, re.S)
            if info:
                added.append(f"##INFO=<ID={info_key(info.group(1), model)},{info.group(2)}")
            elif meta:
                added.append(f"##{info_key(meta.group(1), model)}={meta.group(2)}")
    return "".join(own + added + [headers[first][-1]])


def merged_record(lines: dict[str, str], paths, number: int) -> str:
    fields = {m: line.rstrip("\n").split("\t") for m, line in lines.items()}
    base = next(iter(fields.values()))
    info = [item for item in base[7].split(";") if not GFM_KEY.fullmatch(item.split("=", 1)[0])]
    for model, f in fields.items():
        if f[:5] != base[:5]:
            raise GenofmInputError(f"record {number} differs between the scored VCFs ({paths[model]}: "
                                   f"{':'.join(f[:2])} against {':'.join(base[:2])})")
        for item in f[7].split(";"):
            key, _, value = item.partition("=")
            if GFM_KEY.fullmatch(key):
                info.append(f"{info_key(key, model)}={value}" if value else info_key(key, model))
    info = [item for item in info if item != "."] or ["."]
    return "\t".join(base[:7] + [";".join(info)] + base[8:]) + "\n"
