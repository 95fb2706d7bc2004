"""Comparing models on one call set (genofm.comparison): rank correlations, the merged VCF
with every model's INFO fields renamed, and a mismatch between the scored VCFs."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pysam
import pytest

from genofm.comparison import compare_class_pairs, info_key, merge_vcfs, rank_correlations
from genofm.errors import GenofmInputError

HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=1000>
##INFO=<ID=CLASS,Number=1,Type=String,Description="class">
##INFO=<ID=GFM_STATUS,Number=A,Type=String,Description="status">
##INFO=<ID=GFM_LLR,Number=A,Type=Float,Description="llr">
##genofm_model=<Path="results/models/{model}">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""


def scored_vcf(path, model, llrs, positions=(10, 20, 30)):
    lines = [f"chr1\t{p}\tv{i}\tA\tC\t.\tPASS\tCLASS=x;GFM_STATUS=OK;GFM_LLR={llr}"
             for i, (p, llr) in enumerate(zip(positions, llrs))]
    with pysam.BGZFile(str(path), "wb") as out:
        out.write((HEADER.replace("{model}", model) + "\n".join(lines) + "\n").encode())
    return path


def test_merged_vcf_carries_every_models_fields_by_name(tmp_path):
    paths = {"nt": scored_vcf(tmp_path / "a.vcf.gz", "nt", [-1.5, 0.2, 3]),
             "gpn-small": scored_vcf(tmp_path / "b.vcf.gz", "gpn-small", [-2.5, 0.1, 1])}
    merge_vcfs(paths, tmp_path / "merged.vcf.gz")
    with gzip.open(tmp_path / "merged.vcf.gz", "rt") as handle:
        text = handle.read()
    assert "##INFO=<ID=GFM_LLR_nt," in text and "##INFO=<ID=GFM_LLR_gpn_small," in text
    assert "##genofm_model_gpn_small=<Path=\"results/models/gpn-small\">" in text
    assert "##INFO=<ID=GFM_LLR," not in text and "##genofm_model=" not in text  # nothing left unattributed
    with pysam.VariantFile(str(tmp_path / "merged.vcf.gz")) as vcf:  # htslib reads it, through the index too
        records = list(vcf.fetch("chr1", 0, 1000))
    assert [r.info["CLASS"] for r in records] == ["x"] * 3
    assert [r.info["GFM_LLR_nt"][0] for r in records] == pytest.approx([-1.5, 0.2, 3])
    assert [r.info["GFM_LLR_gpn_small"][0] for r in records] == pytest.approx([-2.5, 0.1, 1])
    assert info_key("GFM_LLR", "m-1") == "GFM_LLR_m_1"


def test_scored_vcfs_that_differ_stop_the_merge(tmp_path):
    paths = {"a": scored_vcf(tmp_path / "a.vcf.gz", "a", [1, 2, 3]),
             "b": scored_vcf(tmp_path / "b.vcf.gz", "b", [1, 2, 3], positions=(10, 21, 30))}
    with pytest.raises(GenofmInputError, match="record 2 differs between the scored VCFs"):
        merge_vcfs(paths, tmp_path / "merged.vcf.gz")
    shorter = {"a": paths["a"], "c": scored_vcf(tmp_path / "c.vcf.gz", "c", [1, 2], positions=(10, 20))}
    with pytest.raises(GenofmInputError, match="different numbers of records"):
        merge_vcfs(shorter, tmp_path / "merged2.vcf.gz")


def test_rank_correlations_and_class_pairs_per_model():
    rng = np.random.default_rng(0)
    n = 200
    base = pd.DataFrame({"record": np.arange(n), "alt": "C", "class": np.where(np.arange(n) < 100, "bad", "ok")})
    signal = np.where(base["class"] == "bad", -2.0, 0.0) + rng.normal(0, 1, n)
    tables = {"m1": base.assign(llr=signal, markov=rng.normal(0, 1, n)),
              "m2": base.assign(lldiff=signal + rng.normal(0, 0.1, n)),  # another score name, the same ranking
              "m3": base.assign(llr=-signal)}  # the opposite ranking
    corr = rank_correlations(tables).set_index(["model_a", "model_b"])
    assert corr.loc[("m1", "m2"), "spearman"] > 0.95 and corr.loc[("m1", "m2"), "score_b"] == "lldiff"
    assert corr.loc[("m1", "m3"), "spearman"] == pytest.approx(-1.0)
    assert corr.loc[("m1", "m2"), "n"] == n
    pairs = compare_class_pairs(tables, seed=0)
    assert list(pairs.columns[:2]) == ["model", "class_a"] and set(pairs["model"]) == {"m1", "m2", "m3"}
    first = pairs[pairs["model"] == "m1"].iloc[0]
    assert first["auroc"] > 0.85 and "scores bad as more disruptive than ok" in first["finding"]
    assert np.isnan(pairs[pairs["model"] == "m2"].iloc[0]["baseline_auroc"])  # m2 has no baseline column
