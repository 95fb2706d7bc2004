"""What a result says, in words: AUROCs with bootstrap intervals and the sentence a reader
needs ("separated, beyond the baseline" or "not separated"), for variant classes and probes.

The report used to show the numbers only, and a demo model at chance or a probe below its
k-mer baseline looked like any other result. Intervals are percentile bootstraps that resample
each class separately (seeded: the same table gives the same file).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.stats import rankdata

BOOTSTRAP_SAMPLES = 1000
LEVEL = 0.95


def auroc_by_rank(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """AUROC of each row: positive (B, n1) against negative (B, n0), ties counted half
    (Mann-Whitney U / n1 n0), so a stack of bootstrap resamples takes one call."""
    positive, negative = np.atleast_2d(positive), np.atleast_2d(negative)
    n1, n0 = positive.shape[1], negative.shape[1]
    ranks = rankdata(np.concatenate([positive, negative], axis=1), axis=1)  # (B, n1 + n0)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def resample_indices(rng: np.random.Generator, n: int, samples: int) -> np.ndarray:
    return rng.integers(0, n, size=(samples, n))  # (B, n)


def interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


CODON_STRATA = (1, 2, 3)
# the strata a frame pair is shown in: each position, and positions 1-2 together (where most
# missense and stop-gained SNVs sit: the trivial baseline is 0.5 inside each of these)
STRATA = {"codon position 1": (1,), "codon position 2": (2,), "codon positions 1-2": (1, 2),
          "codon position 3": (3,)}
MIN_PER_STRATUM = 10  # scored variants of each class within a codon position for a stratified row
FRAME_PAIRS = {("missense", "synonymous"), ("stop_gained", "synonymous"), ("missense", "stop_gained")}
CODING_CLASSES = ("synonymous", "missense", "stop_gained")  # pooled as "coding" against intergenic
COLUMNS = ["class_a", "class_b", "stratum", "score", "n_a", "n_b", "auroc", "ci_low", "ci_high", "baseline_auroc",
           "baseline_ci_low", "baseline_ci_high", "codon_baseline_auroc", "codon_baseline_ci_low",
           "codon_baseline_ci_high", "finding"]


def class_pair_findings(table: pd.DataFrame, scores: dict[str, tuple[str, float]], baseline: str = "markov",
                        seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> pd.DataFrame:
    """One row per pair of classes and model score: the AUROC of class_a above class_b (signed so
    that larger = more disruptive) with its interval, the baseline's on the same variants, and
    the finding in words. `scores` maps a column to (label, sign).

    A pair that codon position alone separates (missense or stop-gained vs synonymous: the
    trivial score "codon position 1 or 2" tells them apart) is also shown within each codon
    position (`stratum`), and its overall row carries that trivial baseline's AUROC: an
    overall AUROC near it may be frame knowledge only."""
    rows = []
    classes = sorted(table["class"].unique())
    present = [s for s in scores if s in table and table[s].notna().any()]
    positions = (table["codon_position"] if "codon_position" in table else pd.Series(0, index=table.index))
    for class_a, class_b in itertools.combinations(classes, 2):
        codon = codon_baseline(table, positions, class_a, class_b, seed, samples)
        for score in (s for s in present if s != baseline):
            row = pair_finding(table, class_a, class_b, score, scores, baseline if baseline in present else None,
                               seed, samples)
            if not row:
                continue
            rows.append({**row, "stratum": "all", **codon_note(row, codon, class_a, class_b)})
            if not codon or not codon["separates"]:
                continue
            for name, members in STRATA.items():
                inside = table[positions.isin(members)]
                counts = [((inside["class"] == c) & inside[score].notna()).sum() for c in (class_a, class_b)]
                if min(counts) < MIN_PER_STRATUM:
                    continue
                sub = pair_finding(inside, class_a, class_b, score, scores,
                                   baseline if baseline in present else None, seed, samples)
                rows.append({**sub, "stratum": name, "finding": f"Within {name}: {sub['finding']}"})
    coding = table["class"].isin(CODING_CLASSES)
    if coding.any() and (table["class"] == "intergenic").any() and "coding" not in classes:
        pooled = table[coding | (table["class"] == "intergenic")].assign(
            **{"class": lambda t: t["class"].where(t["class"] == "intergenic", "coding")})
        for score in (s for s in present if s != baseline):
            row = pair_finding(pooled, "coding", "intergenic", score, scores,
                               baseline if baseline in present else None, seed, samples)
            if row:
                rows.append({**row, "stratum": "all"})
    return pd.DataFrame(rows, columns=COLUMNS)


def codon_baseline(table, positions, class_a, class_b, seed, samples) -> dict | None:
    """AUROC (with interval) of the trivial score "codon position is 1 or 2" for class_a above
    class_b, over their SNVs of known codon position; None when there are none."""
    known = positions.isin(CODON_STRATA)
    a = positions[known & (table["class"] == class_a)].to_numpy()
    b = positions[known & (table["class"] == class_b)].to_numpy()
    if not a.size or not b.size:
        return None
    rng = np.random.default_rng(seed)
    flag_a, flag_b = (a <= 2).astype(float), (b <= 2).astype(float)
    auroc = float(auroc_by_rank(flag_a, flag_b)[0])
    low, high = interval(auroc_by_rank(flag_a[resample_indices(rng, a.size, samples)],
                                       flag_b[resample_indices(rng, b.size, samples)]))
    return {"auroc": round(auroc, 4), "low": round(low, 4), "high": round(high, 4),
            "separates": low > 0.5 or high < 0.5, "strata": [k for k in CODON_STRATA
                                                          if min((a == k).sum(), (b == k).sum()) >= MIN_PER_STRATUM]}


def codon_note(row: dict, codon: dict | None, class_a: str, class_b: str) -> dict:
    """The codon-position baseline's columns and what it means for the overall row's finding."""
    if codon is None:
        frame_pair = tuple(sorted((class_a, class_b))) in FRAME_PAIRS
        note = (" Codon positions unknown (no codon_info_key in the VCF): codon position alone may explain part "
                "of this AUROC." if frame_pair else "")
        return {"finding": row["finding"] + note}
    out = {"codon_baseline_auroc": codon["auroc"], "codon_baseline_ci_low": codon["low"],
           "codon_baseline_ci_high": codon["high"]}
    if not codon["separates"]:
        return {**out, "finding": row["finding"]}
    where = (f"see the rows within codon position {', '.join(map(str, codon['strata']))}" if codon["strata"]
             else f"too few variants within any one codon position (under {MIN_PER_STRATUM} per class) to show "
                  "it there")
    note = (f" Codon position alone gives AUROC {codon['auroc']:.2f} [{codon['low']:.2f}, {codon['high']:.2f}] "
            f"on this pair: {where}.")
    return {**out, "finding": row["finding"] + note}


def pair_finding(table, class_a, class_b, score, scores, baseline, seed, samples) -> dict | None:
    label, sign = scores[score]
    used = [score] + ([baseline] if baseline else [])
    a = table.loc[(table["class"] == class_a) & table[score].notna(), used]
    b = table.loc[(table["class"] == class_b) & table[score].notna(), used]
    if a.empty or b.empty:
        return None
    rng = np.random.default_rng(seed)
    idx_a, idx_b = resample_indices(rng, len(a), samples), resample_indices(rng, len(b), samples)
    values_a, values_b = sign * a[score].to_numpy(), sign * b[score].to_numpy()
    auroc = float(auroc_by_rank(values_a, values_b)[0])
    boot = auroc_by_rank(values_a[idx_a], values_b[idx_b])
    low, high = interval(boot)
    row = {"class_a": class_a, "class_b": class_b, "score": score, "n_a": len(a), "n_b": len(b),
           "auroc": round(auroc, 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
           "baseline_auroc": np.nan, "baseline_ci_low": np.nan, "baseline_ci_high": np.nan}
    if low > 0.5 or high < 0.5:
        first, second = (class_a, class_b) if auroc > 0.5 else (class_b, class_a)
        text = f"{label} scores {first} as more disruptive than {second}"
    else:
        text = f"{label} does not separate {class_a} from {class_b} (the interval holds 0.5)"
    if baseline:
        text += baseline_comparison(a, b, score, baseline, scores, rng, samples, row)
    row["finding"] = text + "."
    return row


def baseline_comparison(a, b, score, baseline, scores, rng, samples, row) -> str:
    """The baseline's AUROC (into row) and how the model compares with it, both on the variants
    that have both scores, over the same resamples (a paired comparison)."""
    name = f"{baseline} baseline"
    a, b = a[a[baseline].notna()], b[b[baseline].notna()]
    if a.empty or b.empty:
        return f"; the {name} scores none of {row['class_a'] if a.empty else row['class_b']}"
    idx_a, idx_b = resample_indices(rng, len(a), samples), resample_indices(rng, len(b), samples)
    boot = {}
    for column in (score, baseline):
        sign = scores[column][1]
        values_a, values_b = sign * a[column].to_numpy(), sign * b[column].to_numpy()
        boot[column] = auroc_by_rank(values_a[idx_a], values_b[idx_b])
        if column == baseline:
            low, high = interval(boot[column])
            row.update(baseline_auroc=round(float(auroc_by_rank(values_a, values_b)[0]), 4),
                       baseline_ci_low=round(low, 4), baseline_ci_high=round(high, 4))
    gap_low, gap_high = interval(np.abs(boot[score] - 0.5) - np.abs(boot[baseline] - 0.5))
    if gap_low > 0:
        return f"; further from chance than the {name}"
    if gap_high < 0:
        return f"; closer to chance than the {name}"
    return f"; level with the {name}"


def score_differences(table: pd.DataFrame, scores: dict[str, tuple[str, float]], pairs: list[tuple[str, str]],
                      seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> pd.DataFrame:
    """For each class pair and each two of `scores` (columns of one table, mapped to (label,
    sign)): both AUROCs on the variants that have both scores and the difference with a paired
    95% bootstrap interval (the same resamples for both), so that "score 1 beats score 2" is
    said only where the interval excludes 0."""
    rows = []
    for class_a, class_b in pairs:
        for first, second in itertools.combinations([s for s in scores if s in table], 2):
            both = table[table[first].notna() & table[second].notna()]
            a, b = both[both["class"] == class_a], both[both["class"] == class_b]
            if a.empty or b.empty:
                continue
            rng = np.random.default_rng(seed)
            idx_a, idx_b = resample_indices(rng, len(a), samples), resample_indices(rng, len(b), samples)
            point, boot = {}, {}
            for column in (first, second):
                sign = scores[column][1]
                values_a, values_b = sign * a[column].to_numpy(), sign * b[column].to_numpy()
                point[column] = float(auroc_by_rank(values_a, values_b)[0])
                boot[column] = auroc_by_rank(values_a[idx_a], values_b[idx_b])
            low, high = interval(boot[first] - boot[second])
            rows.append({"class_a": class_a, "class_b": class_b, "score_1": first, "score_2": second,
                         "n_a": len(a), "n_b": len(b), "auroc_1": round(point[first], 4),
                         "auroc_2": round(point[second], 4),
                         "difference": round(point[first] - point[second], 4), "ci_low": round(low, 4),
                         "ci_high": round(high, 4)})
    return pd.DataFrame(rows, columns=["class_a", "class_b", "score_1", "score_2", "n_a", "n_b", "auroc_1",
                                       "auroc_2", "difference", "ci_low", "ci_high"])


def probe_findings(summary: pd.DataFrame) -> pd.DataFrame:
    """The probe summary with a `finding` per row: each method's AUROC (classification) or
    Spearman correlation (regression) against the k-mer baseline of the same task (cells read
    "mean ± sd" over the same folds)."""
    summary = summary.copy()
    findings = []
    for row in summary.itertuples():
        task_rows = summary[summary["task"] == row.task]
        baselines = task_rows[task_rows["method"].str.endswith("_baseline")]
        if row.method.endswith("_baseline") or baselines.empty:
            findings.append("the baseline: the same estimator on k-mer frequencies"
                            if row.method.endswith("_baseline") else "no baseline row for this task")
            continue
        metric, name = ("auroc", "AUROC") if isinstance(getattr(row, "auroc", None), str) else ("spearman", "Spearman")
        ours, theirs = mean_of(getattr(row, metric)), mean_of(baselines.iloc[0][metric])
        gap = ours - theirs
        where = "above" if gap > 0 else "below" if gap < 0 else "level with"
        text = f"{name} {ours:.3f}, {where} the k-mer baseline ({theirs:.3f}) by {abs(gap):.3f}"
        if gap <= 0:
            text += ": the model adds nothing here that k-mer counts do not give"
        findings.append(text)
    summary["finding"] = findings
    return summary


def mean_of(cell) -> float:
    return float(str(cell).split("±")[0])
