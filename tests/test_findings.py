"""The report's findings in words (class pairs with bootstrap intervals against the Markov
baseline; probes against the k-mer baseline) and what score_distributions.png plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from genofm.findings import auroc_by_rank, class_pair_findings, probe_findings, score_differences
from genofm.variant_report import SCORES, distribution_panel

REPO = Path(__file__).resolve().parents[1]


def scored_table(seed: int = 0, n: int = 80) -> pd.DataFrame:
    """stop_gained: low LLR (disruptive) and a baseline that knows nothing; synonymous and
    missense: the same distribution; indels: embedding distances 100x those of SNVs."""
    rng = np.random.default_rng(seed)
    rows = []
    for cls, llr_mean in (("stop_gained", -3.0), ("synonymous", 0.0), ("missense", 0.0)):
        for _ in range(n):
            rows.append({"class": cls, "llr": rng.normal(llr_mean, 1.0), "markov": rng.normal(0, 1),
                         "emb_cosine": rng.uniform(0.001, 0.01)})
    for _ in range(20):
        rows.append({"class": "frameshift", "llr": np.nan, "markov": np.nan, "emb_cosine": rng.uniform(0.5, 1.0)})
    return pd.DataFrame(rows)


def test_auroc_by_rank_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 30).astype(float)
    y = np.r_[np.ones(40), np.zeros(30)]
    assert auroc_by_rank(pos, neg)[0] == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))


def test_class_pairs_say_what_was_and_was_not_learned():
    findings = class_pair_findings(scored_table(), SCORES)
    row = findings.set_index(["class_a", "class_b", "score"])
    stop = row.loc["stop_gained", "synonymous", "llr"]
    # llr is negated: stop_gained's low LLR means more disruptive, far from chance with an interval
    assert stop["auroc"] > 0.9 and 0.5 < stop["ci_low"] <= stop["auroc"] <= stop["ci_high"]
    assert "scores stop_gained as more disruptive than synonymous" in stop["finding"]
    assert "further from chance than the markov baseline" in stop["finding"]
    assert 0.35 < stop["baseline_auroc"] < 0.65 and stop["baseline_ci_low"] < 0.5 < stop["baseline_ci_high"]
    same = row.loc["missense", "synonymous", "llr"]
    assert same["ci_low"] < 0.5 < same["ci_high"]
    assert "does not separate missense from synonymous" in same["finding"]
    assert "level with the markov baseline" in same["finding"]
    # the baseline scores no indel: said, not left blank
    indel = row.loc["frameshift", "synonymous", "emb_cosine"]
    assert "scores frameshift as more disruptive" in indel["finding"]
    assert "markov baseline scores none of frameshift" in indel["finding"]
    assert "markov" not in set(findings["score"])  # the baseline is beside each score, not a row of its own


def test_pairs_codon_position_separates_are_shown_within_codon_position():
    """A score that knows only the reading frame (low at codon positions 1-2) separates missense
    from synonymous overall, near the codon-position baseline, and not within a codon position."""
    rng = np.random.default_rng(3)
    rows = []
    for cls, weights in (("missense", (0.4, 0.45, 0.15)), ("synonymous", (0.05, 0.0, 0.95)),
                         ("stop_gained", (0.6, 0.2, 0.2))):
        for position in rng.choice([1, 2, 3], size=150, p=weights):
            frame = -2.0 if position <= 2 else 0.0
            rows.append({"class": cls, "codon_position": int(position), "llr": frame + rng.normal(0, 1.0),
                         "markov": rng.normal(0, 1)})
    rows += [{"class": "neutral", "codon_position": 0, "llr": rng.normal(0, 1), "markov": rng.normal(0, 1)}
             for _ in range(100)]
    findings = class_pair_findings(pd.DataFrame(rows), SCORES)
    pair = findings[(findings["class_a"] == "missense") & (findings["class_b"] == "synonymous")].set_index("stratum")
    overall = pair.loc["all"]
    assert overall["auroc"] > 0.75 and overall["codon_baseline_auroc"] > 0.8
    assert overall["codon_baseline_ci_low"] > 0.5
    assert "Codon position alone gives AUROC" in overall["finding"] and "see the rows within codon position 3" in \
        overall["finding"]
    within = pair.loc["codon position 3"]  # missense has ~22 SNVs at position 3, synonymous ~140
    assert within["ci_low"] < 0.5 < within["ci_high"] and within["n_a"] >= 10
    assert within["finding"].startswith("Within codon position 3: ") and "does not separate" in within["finding"]
    assert "codon position 2" not in pair.index  # synonymous has no SNV at position 2
    # a pair codon position does not separate (no positions for neutral): one row, no baseline, no note
    other = findings[(findings["class_a"] == "neutral") & (findings["class_b"] == "synonymous")]
    assert list(other["stratum"]) == ["all"] and other["codon_baseline_auroc"].isna().all()


def test_frame_pairs_are_also_shown_within_codon_positions_1_and_2_together():
    """Most missense SNVs sit at codon positions 1-2; the pair is also shown there, where a
    frame-only score is at chance."""
    rng = np.random.default_rng(4)
    rows = []
    for cls, weights in (("missense", (0.45, 0.45, 0.1)), ("synonymous", (0.15, 0.0, 0.85))):
        for position in rng.choice([1, 2, 3], size=200, p=weights):
            rows.append({"class": cls, "codon_position": int(position),
                         "llr": (-2.0 if position <= 2 else 0.0) + rng.normal(0, 1.0), "markov": rng.normal(0, 1)})
    table = pd.DataFrame(rows)
    findings = class_pair_findings(table, SCORES).set_index("stratum")
    both = findings.loc["codon positions 1-2"]
    assert both["n_b"] == ((table["class"] == "synonymous") & (table["codon_position"] <= 2)).sum() >= 10
    assert both["ci_low"] < 0.5 < both["ci_high"] and both["finding"].startswith("Within codon positions 1-2: ")
    assert findings.loc["all", "auroc"] > 0.7


def test_coding_snvs_pooled_against_intergenic_ones():
    rng = np.random.default_rng(5)
    rows = [{"class": cls, "llr": rng.normal(mean, 1.0), "markov": rng.normal(0, 1)}
            for cls, mean in (("synonymous", -1.0), ("missense", -1.0), ("intergenic", 0.0)) for _ in range(60)]
    findings = class_pair_findings(pd.DataFrame(rows), SCORES)
    pooled = findings[(findings["class_a"] == "coding") & (findings["class_b"] == "intergenic")]
    assert len(pooled) == 1 and pooled["n_a"].iloc[0] == 120 and pooled["n_b"].iloc[0] == 60
    assert pooled["auroc"].iloc[0] > 0.7


def test_two_scores_compared_on_the_same_variants_with_a_paired_interval():
    """Two scores that share most of their noise: a small true difference shows in the paired
    interval; identical scores differ by exactly 0."""
    rng = np.random.default_rng(6)
    n = 300
    shared = rng.normal(0, 1, 2 * n)
    signal = np.r_[np.full(n, -0.6), np.zeros(n)]
    table = pd.DataFrame({"class": ["stop_gained"] * n + ["synonymous"] * n, "llr": signal + shared,
                          "markov": 0.7 * signal + shared, "lldiff": signal + shared})
    scores = {"llr": SCORES["llr"], "markov": SCORES["markov"], "lldiff": (SCORES["llr"][0], -1.0)}
    table.loc[0, "markov"] = np.nan  # one variant without the second score: left out of that comparison
    diffs = score_differences(table, scores, [("stop_gained", "synonymous")]).set_index(["score_1", "score_2"])
    better = diffs.loc[("llr", "markov")]
    assert better["n_a"] == n - 1 and better["difference"] > 0 and better["ci_low"] > 0
    same = diffs.loc[("llr", "lldiff")]
    assert same["difference"] == 0 and same["ci_low"] == 0 == same["ci_high"]


def test_frame_pairs_without_codon_positions_say_so():
    findings = class_pair_findings(scored_table(), SCORES)
    row = findings.set_index(["class_a", "class_b", "score"]).loc["stop_gained", "synonymous", "llr"]
    assert "Codon positions unknown" in row["finding"] and set(findings["stratum"]) == {"all"}


def test_findings_are_reproducible_and_follow_the_seed():
    table = scored_table()
    first, again = class_pair_findings(table, SCORES, seed=3), class_pair_findings(table, SCORES, seed=3)
    pd.testing.assert_frame_equal(first, again)
    other = class_pair_findings(table, SCORES, seed=4)
    assert not first["ci_low"].equals(other["ci_low"]) and first["auroc"].equals(other["auroc"])


def test_probe_below_its_baseline_is_said_in_words():
    summary = pd.DataFrame([
        {"task": "promoters", "model": "m", "method": "probe", "auroc": "0.820 ± 0.030"},
        {"task": "promoters", "model": "m", "method": "kmer4_baseline", "auroc": "0.910 ± 0.010"},
        {"task": "promoters", "model": "m", "method": "finetune_ia3", "auroc": "0.950 ± 0.020"},
    ])
    found = probe_findings(summary).set_index("method")["finding"]
    assert found["probe"].startswith("AUROC 0.820, below the k-mer baseline (0.910) by 0.090")
    assert "adds nothing here that k-mer counts do not give" in found["probe"]
    assert found["finetune_ia3"] == "AUROC 0.950, above the k-mer baseline (0.910) by 0.040"
    assert "baseline" in found["kmer4_baseline"]


def test_distribution_panels_plot_the_sign_of_their_label():
    table = scored_table()
    llr = distribution_panel(table, "llr")
    # the title says −LLR and larger = more disruptive: stop_gained (LLR about −3) plots about +3
    assert llr["title"].startswith("-LLR") and "larger = more disruptive" in llr["title"].replace("\n", " ")
    assert llr["data"]["stop_gained"].mean() > 2 and llr["xlabel"] == "−llr"
    assert "frameshift" not in llr["data"]  # no LLR for indels: no empty row
    assert not llr["log_axis"]
    distance = distribution_panel(table, "emb_cosine")
    assert distance["log_axis"] and 0 < distance["linthresh"] < 0.01  # indels dwarf SNVs: a log axis
    assert set(distance["data"]) == {"stop_gained", "synonymous", "missense", "frameshift"}
    for score in SCORES:  # no title line is cut off at the panel's width
        assert all(len(line) <= 38 for line in distribution_panel(table.assign(**{score: 1.0}), score)["title"]
                   .splitlines())


def test_distributions_caption_names_every_panel():
    caption = (REPO / "report/variant_distributions.rst").read_text().replace("\n", " ")
    for label, _ in SCORES.values():
        words = label.lstrip("-").split(" (")[0]
        assert words.lower() in caption.lower(), label
