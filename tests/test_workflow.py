"""The workflow end to end: lint, dry runs, the demo's stages for real, and bad configs that
stop with a clear message and leave nothing half-written."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch
import yaml

from conftest import (REPO, cheaper_probes_and_scoring, copy_workflow, promoter_task_only, require_tool,
                      without_library)
from genofm.motifs import recovered
from genofm.regions import read_regions
from genofm.tokens import load_token_set

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def demo_test_config() -> dict:
    """The demo config with its pretraining cut short (the demo's model 300 of its 1,200 steps, the
    encoder 40 of its 300), 3 folds instead of 5 and 120 windows attributed (lower clustering
    floors to match): every stage and output of the demo in about half its time. What the full
    demo learns is printed, and its claims checked, by tests/benchmarks/demo_quality.py (by hand:
    about 25 minutes); the oligo library is left out (test_a_fasta_library_... runs it cut short)."""
    config = without_library(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    config["models"]["demo_conv"]["training"].update(max_steps=300, eval_every=100, checkpoint_every=100,
                                                     metrics_every=50, log_every=50)
    config["models"]["demo_mlm"]["training"].update(max_steps=40, eval_every=20, checkpoint_every=20)
    # 120 windows call ~150 seqlets, near TF-MoDISco's default floor of 100 per sign for
    # clustering: whether any pattern forms then hangs on float rounding of the machine
    config["probes"]["promoters"]["attribution"].update(max_regions=120, min_metacluster_seqlets=30,
                                                        min_pattern_seqlets=10)
    for task in ("promoters", "promoter_activity"):
        config["probes"][task]["folds"] = 3
    return config


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """A copy of the workflow with the demo (its trainings cut short) run through every stage; the
    copy's config/config.yaml is that config, so later tests change it as a user would."""
    workdir = tmp_path_factory.mktemp("demo")
    copy_workflow(workdir)
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(demo_test_config(), sort_keys=False))
    snakemake(workdir)
    return workdir


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "test_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint")
    assert "Lints for" not in proc.stdout + proc.stderr


def test_dry_run_of_the_grch38_example():
    proc = snakemake(REPO, "-n", "--configfile", "config/examples/grch38_chr11.yaml")
    out = proc.stdout + proc.stderr
    assert "download_reference" in out and "grch38_chr11" in out
    assert "results/demo/" not in out  # the example replaces the demo config, not extends it


def test_the_grch38_example_is_one_uncommented_block_from_published_attention(tmp_path):
    """The commented block at the end of the chr11 example, uncommented with a local checkpoint
    and a VCF, plans the published model's scores and its attention map over chr11."""
    from tools.tiny_checkpoints import make_nt as make_nt_checkpoint

    text = (REPO / "config/examples/grch38_chr11.yaml").read_text()
    block = text[text.index("# models:"):]
    config = yaml.safe_load(text) | yaml.safe_load("\n".join(line[2:] for line in block.splitlines()))
    config["models"]["nt_v2_50m"]["huggingface"] = str(make_nt_checkpoint(tmp_path / "nt"))
    (tmp_path / "chr11.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    config["variants"]["chr11_variants"]["vcf"] = str(tmp_path / "chr11.vcf")
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)))
    out = proc.stdout + proc.stderr
    for planned in ("score_variants", "variant_figures", "results/grch38_chr11/variants/nt_v2_50m/chr11_variants/"
                    "attention.png"):
        assert planned in out, out[-2000:]
    assert "rule pretrain" not in out  # the published model is read, not trained


def test_typo_in_a_config_key_names_the_key(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["genomes"]["demo"]["region_sets"]["promoters"]["upstraem"] = 100
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "unknown config key 'genomes.demo.region_sets.promoters.upstraem' (allowed at " \
           "genomes.demo.region_sets.promoters: type, bed," in out
    assert "test_config.yaml" in out
    assert len(out.splitlines()) < 30, out  # the key and where, not the whole schema


def test_a_resource_setting_of_an_old_config_says_where_it_moved(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["models"]["demo_mlm"]["threads"] = 4
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0
    assert "'models.demo_mlm.threads'; it moved to models.demo_mlm.resources.threads" in proc.stdout + proc.stderr


@pytest.mark.parametrize("change, message", [
    ({"model": "demo_mlm"}, "set variants.demo_variants.model (one model) or variants.demo_variants.models"),
    ({"models": ["demo_mlm", "nt_typo"]}, "call set 'demo_variants' names model 'nt_typo', which is not configured"),
    ({"heads": ["promoterz"]}, "variants.demo_variants.heads: 'promoterz' is not a probe task (tasks: "
                               "library, promoter_activity, promoters)"),
    ({"finetuned_heads": ["promoter_activity"]}, "variants.demo_variants.finetuned_heads: 'promoter_activity': the "
                                                 "task does not fine-tune (probes.promoter_activity.finetune.method "
                                                 "is none)"),
])
def test_a_callset_names_its_models_clearly(tmp_path, change, message):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["variants"]["demo_variants"].update(change)
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_attributions_of_a_finetune_are_planned_or_refused(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["probes"]["promoters"]["attribution"]["target"] = "finetune"
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), "--forceall",
                     "results/demo/probes/demo_conv/promoters/attribution/motifs.tsv", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "rule attribute:" in out and "rule finetune:" in out, out[-2000:]
    assert "results/demo/finetune/demo_conv/promoters/model" in out
    config["probes"]["promoter_activity"]["attribution"] = {"enabled": True, "target": "finetune"}
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0
    assert ("probes.promoter_activity.attribution.target is finetune, but the task does not fine-tune"
            in proc.stdout + proc.stderr)


def test_set_weights_name_a_train_set(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["models"]["demo_conv"]["genomes"]["demo"]["set_weights"] = {"promoters": 10}
    proc = snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0
    assert ("models.demo_conv.genomes.demo: set_weights names ['promoters'], which are not among train_sets "
            "['pretrain_train']") in proc.stdout + proc.stderr


def test_demo_outputs(demo_run):
    genome = demo_run / "resources/demo/genome.fa.gz"
    assert genome.exists() and Path(f"{genome}.fai").exists() and Path(f"{genome}.gzi").exists()
    config = yaml.safe_load((demo_run / "config/config.yaml").read_text())
    for name in config["genomes"]["demo"]["region_sets"]:
        regions = read_regions(demo_run / f"results/demo/regions/{name}.parquet")
        assert len(regions) > 0
        assert list(regions.columns) == ["chrom", "start", "end", "strand", "name", "label", "sequence"]
        tokens = load_token_set(demo_run / f"results/demo/tokens/{name}")
        assert len(tokens) == len(regions)
        for i in np.linspace(0, len(regions) - 1, 5).astype(int):
            assert tokens.tokenizer.decode(tokens.region(i)) == regions["sequence"][i].upper()
    labelled = read_regions(demo_run / "results/demo/regions/promoters_vs_background.parquet")
    assert set(labelled["label"]) == {"promoter", "background"}
    train = read_regions(demo_run / "results/demo/regions/pretrain_train.parquet")
    valid = read_regions(demo_run / "results/demo/regions/pretrain_valid.parquet")
    assert set(train["chrom"]) == {"chr1"} and set(valid["chrom"]) == {"chr2"}


def test_demo_model_learned(demo_run):
    """The demo's next-token model predicts held-out chr2 better than base frequencies do, and
    better as it trains (most of the demo genome is random sequence: little is left to learn)."""
    model_dir = demo_run / "results/models/demo_conv"
    metrics = pd.read_csv(model_dir / "metrics.tsv", sep="\t")
    val = metrics["val_loss"].dropna()
    assert val.iloc[-1] < val.iloc[0] and val.iloc[-1] < metrics["unigram_entropy"].iloc[0] - 0.01, metrics
    log = (demo_run / "logs/models/demo_conv/pretrain.log").read_text()
    assert "tokens/s" in log and "ETA" in log and "unigram entropy" in log
    for name in ("model.safetensors", "config.json", "vocab.txt", "loss.png", "summary.json"):
        assert (model_dir / name).exists(), name


def test_demo_model_exported_to_huggingface(demo_run):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from genofm.model import DNALM

    exported = demo_run / "results/models/demo_mlm/huggingface"
    hf = AutoModelForMaskedLM.from_pretrained(exported, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported, local_files_only=True)
    ours = DNALM.from_pretrained(demo_run / "results/models/demo_mlm").eval()
    ids = tokenizer(["ACGTTGCAAGGCTTAGCCATGCAGTTACGGATCAGTACGATCAGGCAT" * 2], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).logits, ours(ids).logits, atol=1e-4, rtol=1e-4)


def test_demo_probe_finetune_and_baseline(demo_run):
    summary = pd.read_csv(demo_run / "results/probes_summary.tsv", sep="\t")
    summary = summary[summary["task"] == "promoters"].reset_index(drop=True)
    assert list(summary["method"]) == ["probe", "kmer4_baseline", "finetune_ia3"]
    assert summary["auroc"].str.match(r"0\.\d{3} ± 0\.\d{3}").all()
    # each method's standing against the k-mer baseline, in words
    assert summary.loc[0, "finding"].startswith("AUROC 0.")
    assert " the k-mer baseline (" in summary.loc[0, "finding"]
    probe_dir = demo_run / "results/demo/probes/demo_conv/promoters"
    metrics = json.loads((probe_dir / "metrics.json").read_text())
    assert metrics["results"]["probe"]["auroc"]["mean"] > 0.8  # the embeddings carry the signal
    assert set(metrics["class_counts"]) == {"promoter", "background"}
    assert (probe_dir / "performance.png").read_bytes()[:4] == b"\x89PNG"
    predictions = pd.read_csv(probe_dir / "predictions.tsv", sep="\t")
    assert len(predictions) == metrics["n_regions"] and set(predictions["fold"]) == {0, 1, 2}
    embeddings = np.load(demo_run / "results/demo/embeddings/demo_conv/promoters_vs_background.npy")
    assert embeddings.shape == (metrics["n_regions"], 64)
    adapter = demo_run / "results/demo/finetune/demo_conv/promoters/model"
    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == "IA3"
    assert (adapter / "adapter_model.safetensors").exists()


def test_demo_regression_probe_and_predictions(demo_run):
    """The promoter-activity task (a value per region) and the trained probe applied to a region set."""
    summary = pd.read_csv(demo_run / "results/probes_summary.tsv", sep="\t")
    rows = summary[summary["task"] == "promoter_activity"].reset_index(drop=True)
    assert list(rows["method"]) == ["probe", "kmer4_baseline"]
    assert rows["spearman"].str.match(r"-?0\.\d{3} ± 0\.\d{3}").all() and rows["auroc"].isna().all()
    assert rows.loc[0, "finding"].startswith("Spearman ") and " the k-mer baseline (" in rows.loc[0, "finding"]
    task_dir = demo_run / "results/demo/probes/demo_conv/promoter_activity"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    n_promoters = len((REPO / "config/demo/promoter_activity.bed").read_text().splitlines())
    assert metrics["objective"] == "regression" and metrics["n_regions"] == n_promoters
    gap = metrics["results"]["probe"]["spearman"]["mean"] - metrics["results"]["kmer4_baseline"]["spearman"]["mean"]
    assert metrics["probe_beats_baseline"] == (gap > 0) == (" above the k-mer baseline" in rows.loc[0, "finding"])
    predictions = pd.read_csv(task_dir / "predictions.tsv", sep="\t")
    assert {"label", "probe_prediction", "kmer4_baseline_prediction"} <= set(predictions.columns)
    activity = pd.read_csv(REPO / "config/demo/promoter_activity.bed", sep="\t", header=None)
    assert dict(zip(predictions["name"], predictions["label"])) == dict(zip(activity[3], activity[6]))
    assert (task_dir / "performance.png").read_bytes()[:4] == b"\x89PNG"
    # the promoter probe, trained on every window, applied to the annotation's promoters
    applied = pd.read_csv(demo_run / "results/demo/probes/demo_conv/promoters/predict/promoters.tsv", sep="\t")
    regions = read_regions(demo_run / "results/demo/regions/promoters.parquet")
    assert list(applied["name"]) == list(regions["name"])
    assert list(applied.columns[-3:]) == ["p_background", "p_promoter", "predicted_class"]
    assert applied["p_promoter"].mean() > 0.7 and (applied["predicted_class"] == "promoter").mean() > 0.7
    # and the task's fine-tune (IA3 adapters + head), trained on every window, applied to them too
    tuned = pd.read_csv(demo_run / "results/demo/finetune/demo_conv/promoters/predict/promoters.tsv", sep="\t")
    assert list(tuned.columns) == list(applied.columns) and list(tuned["name"]) == list(regions["name"])
    # (on a model pretrained for a quarter of the demo's steps: the full demo's fine-tune gives 0.83)
    assert tuned["p_promoter"].mean() > 0.55 and (tuned["predicted_class"] == "promoter").mean() > 0.7
    attribution = demo_run / "results/demo/probes/demo_conv/promoters/attribution"
    motifs = pd.read_csv(attribution / "motifs.tsv", sep="\t")
    assert len(motifs) > 0 and motifs["best_id"].str.match(r"MA\d{4}\.\d").all() and motifs["q"].between(0, 1).all()
    assert (attribution / "motifs.png").read_bytes()[:4] == b"\x89PNG"
    assert np.load(attribution / "hypothetical.npy", mmap_mode="r").shape == (120, 300, 4)
    head = json.loads((demo_run / "results/demo/probes/demo_conv/promoters/head/head.json").read_text())
    assert head["embedding"]["pooling"] == "mean" and head["region_set"] == "promoters_vs_background"


def test_demo_trained_head_effects(demo_run):
    """Both probe tasks' trained heads and the promoter task's fine-tune score each variant of
    demo_conv (not demo_mlm, whose embeddings they were not trained on), in the table, the VCF
    and the findings."""
    base = demo_run / "results/demo/variants"
    table = pd.read_csv(base / "demo_conv/demo_variants.tsv", sep="\t")
    assert list(table.columns[-3:]) == ["head_promoters", "head_promoter_activity", "head_promoters_finetuned"]
    ok = table["status"] == "OK"
    assert table.loc[ok, "head_promoters"].notna().mean() > 0.95 and table.loc[~ok, "head_promoters"].isna().all()
    assert "head_promoters" not in pd.read_csv(base / "demo_mlm/demo_variants.tsv", sep="\t", nrows=0).columns
    with pysam.VariantFile(str(base / "demo_conv/demo_variants.vcf.gz")) as vcf:
        assert "log-odds of class 'promoter'" in vcf.header.info["GFM_HEAD_PROMOTERS"].description
        record = next(r for r in vcf if r.info["GFM_STATUS"] == ("OK",))  # one value per ALT
        row = table[(table["pos"] == record.pos) & (table["alt"] == record.alts[0])].iloc[0]
        assert record.info["GFM_HEAD_PROMOTER_ACTIVITY"][0] == pytest.approx(row["head_promoter_activity"], rel=1e-4)
        assert record.info["GFM_HEAD_PROMOTERS_FINETUNED"][0] == pytest.approx(row["head_promoters_finetuned"],
                                                                                rel=1e-4)
    assert table.loc[ok, "head_promoters_finetuned"].notna().mean() > 0.95
    findings = pd.read_csv(base / "demo_conv/demo_variants/findings.tsv", sep="\t")
    pair = findings[(findings["score"] == "head_promoter_activity") & (findings["class_a"] == "motif_disrupting")
                    & (findings["class_b"] == "neutral")]
    assert len(pair) == 1 and pair.iloc[0]["finding"].startswith("-promoter_activity head effect")
    # what the README claims for the demo, held by this shortened run too: the fine-tuned promoter
    # head ranks motif-disrupting SNVs above neutral ones (0.64 here, 0.56-0.72; the full demo's
    # interval above chance is checked by tests/benchmarks/demo_quality.py); a margin below for
    # another CPU's float rounding
    claim = findings[(findings["score"] == "head_promoters_finetuned") & (findings["class_a"] == "motif_disrupting")
                     & (findings["class_b"] == "neutral") & (findings["stratum"] == "all")]
    assert len(claim) == 1 and claim.iloc[0]["auroc"] > 0.55, claim.to_string()


def test_demo_variants_scored_and_read_by_bcftools(demo_run):
    require_tool("bcftools")
    base = demo_run / "results/demo/variants/demo_mlm/demo_variants"
    vcf = Path(f"{base}.vcf.gz")
    assert Path(f"{vcf}.tbi").exists()
    proc = subprocess.run(["bcftools", "query", "-f", "%ID\t%REF\t%ALT\t%INFO/GFM_STATUS\t%INFO/GFM_LLR\n", str(vcf)],
                          capture_output=True, text=True, check=True)
    assert "[E::" not in proc.stderr and "[W::" not in proc.stderr, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    source = [line.split("\t")[2] for line in (demo_run / "config/demo/variants.vcf").read_text().splitlines()
              if not line.startswith("#")]
    assert [r[0] for r in rows] == source and len(rows) == 530  # every record, in input order
    assert {r[3] for r in rows} == {"OK"}
    assert all((r[4] != ".") == (len(r[1]) == len(r[2]) == 1) for r in rows)  # an LLR for every SNV
    summary = json.loads(Path(f"{base}.summary.json").read_text())
    assert summary["records_in"] == summary["records_out"] == 530
    aurocs = pd.read_csv(base / "class_auroc.tsv", sep="\t")
    pairs = set(zip(aurocs["positive"], aurocs["negative"]))
    for wanted in [("stop_gained", "synonymous"), ("missense", "synonymous"), ("motif_disrupting", "neutral")]:
        assert wanted in pairs
    assert {"llr", "emb_cosine", "markov"} <= set(aurocs["score"])  # the Markov baseline beside the model
    findings = pd.read_csv(base / "findings.tsv", sep="\t").set_index(["class_a", "class_b", "score", "stratum"])
    stop = findings.loc["stop_gained", "synonymous", "llr", "all"]  # in words, with an interval and the baseline
    assert stop["ci_low"] <= stop["auroc"] <= stop["ci_high"] and "markov baseline" in stop["finding"]
    # codon position alone separates this pair: its baseline beside it, and the pair within codon position 3
    assert stop["codon_baseline_auroc"] > 0.8 and "Codon position alone gives AUROC" in stop["finding"]
    assert findings.loc["stop_gained", "synonymous", "llr", "codon position 3"]["finding"].startswith(
        "Within codon position 3: ")
    # each finding's words follow its interval
    frameshift = findings.loc["frameshift", "synonymous", "emb_cosine", "all"]
    words = ("scores frameshift as more disruptive than synonymous" if frameshift["ci_low"] > 0.5 else
             "scores synonymous as more disruptive than frameshift" if frameshift["ci_high"] < 0.5 else
             "does not separate frameshift from synonymous (the interval holds 0.5)")
    assert frameshift["finding"].startswith(f"embedding cosine distance {words}"), frameshift["finding"]
    for name in ("score_distributions.png", "class_auroc.png", "along_genome.png", "ism.png", "attention.png"):
        assert (base / name).read_bytes()[:4] == b"\x89PNG", name
    page = (base / "attention.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "attention weight, query" in page and "https://" not in page
    assert len(pd.read_csv(base / "ism.tsv", sep="\t")) == 100  # 100 tokens of 1 base


def test_demo_quality_script_reads_a_finished_run(demo_run):
    """tests/benchmarks/demo_quality.py (run by hand on the full demo) on this run: every figure it
    prints is there, and its exit status says whether the claim held (this run's training is short)."""
    proc = subprocess.run([sys.executable, "tests/benchmarks/demo_quality.py", "--workdir", str(demo_run)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert "claim: demo_conv's head_promoters_finetuned ranks motif_disrupting above neutral" in out, proc.stderr
    assert proc.returncode == (1 if "NOT met" in out else 0), proc.stderr[-3000:]
    assert "demo_conv (clm): held-out loss" in out and "Probe task promoters (demo_conv), finetune_ia3: AUROC" in out
    assert "demo_conv\tmotif_disrupting vs neutral\tall\thead_promoters_finetuned\t0." in out
    assert "demo_mlm\tstop_gained vs synonymous\tcodon position 3\tllr\t" in out
    assert "planted JASPAR motifs recovered: 0 of 6 as a pattern's best match" in out  # no library task here
    assert "claim: the oligo library's attributions bring at least 4 of the 6 planted motifs" in out


def test_demo_sequences_equal_bedtools(demo_run, tmp_path):
    require_tool("bedtools")
    plain = tmp_path / "genome.fa"
    with open(plain, "wb") as handle:
        subprocess.run(["gzip", "-dc", str(demo_run / "resources/demo/genome.fa.gz")], stdout=handle, check=True)
    for name in ("promoters_vs_background", "introns"):
        regions = read_regions(demo_run / f"results/demo/regions/{name}.parquet")
        bed = tmp_path / f"{name}.bed"
        regions[["chrom", "start", "end", "name"]].assign(score=0, strand=regions["strand"]).to_csv(
            bed, sep="\t", header=False, index=False)
        out = subprocess.run(["bedtools", "getfasta", "-s", "-tab", "-fi", str(plain), "-bed", str(bed)],
                             capture_output=True, text=True, check=True).stdout
        assert [line.split("\t")[1] for line in out.splitlines()] == list(regions["sequence"])


def small_demo_config() -> dict:
    """The demo made small: every stage in about a minute on 2 cores (a short pretraining, two
    folds of one fine-tuning epoch, 40 windows attributed, a fifth of the variants scored, a
    smaller figure)."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for model in ("demo_mlm", "demo_conv"):
        config["models"][model]["training"].update(max_steps=10, eval_every=10, checkpoint_every=10,
                                                   metrics_every=5, eval_windows=32)
    cheaper_probes_and_scoring(config)
    config["probes"]["promoters"]["finetune"]["epochs"] = 1
    config["variants"]["demo_variants"]["regions"] = ["chr1:1-300000"]
    return config


def test_demo_compares_its_two_models(demo_run):
    require_tool("bcftools")
    base = demo_run / "results/demo/comparisons/demo_variants"
    pairs = pd.read_csv(base / "class_pairs.tsv", sep="\t")
    assert set(pairs["model"]) == {"demo_conv", "demo_mlm"}
    own_score = pairs["score"] == pairs["model"].map({"demo_conv": "lldiff", "demo_mlm": "llr"})
    stop = pairs[(pairs["class_a"] == "stop_gained") & (pairs["class_b"] == "synonymous") & own_score]
    overall = stop[stop["stratum"] == "all"]
    assert set(overall["model"]) == {"demo_conv", "demo_mlm"} and len(overall) == 2
    assert overall["baseline_auroc"].notna().all() and (stop["ci_low"] <= stop["ci_high"]).all()
    assert set(stop["stratum"]) == {"all", "codon position 3"}  # also within codon position, for both models
    correlation = pd.read_csv(base / "rank_correlation.tsv", sep="\t").iloc[0]
    # the next-token model's log-likelihood difference against the masked model's LLR
    assert (correlation["model_a"], correlation["model_b"], correlation["score_a"], correlation["score_b"]) == (
        "demo_conv", "demo_mlm", "lldiff", "llr")
    assert correlation["n"] == 500 and -1 <= correlation["spearman"] <= 1  # every SNV, scored by both
    speed = pd.read_csv(base / "speed.tsv", sep="\t")
    assert list(speed["model"]) == ["demo_conv", "demo_mlm"] and (speed["seconds_per_1000"] > 0).all()
    proc = subprocess.run(["bcftools", "query", "-f", "%ID\t%INFO/GFM_LLDIFF_demo_conv\t%INFO/GFM_LLR_demo_mlm\n",
                           str(base / "demo_variants.vcf.gz")], capture_output=True, text=True, check=True)
    assert "[W::" not in proc.stderr and "[E::" not in proc.stderr, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    table = pd.read_csv(demo_run / "results/demo/variants/demo_conv/demo_variants.tsv", sep="\t")
    assert len(rows) == 530 and [r[0] for r in rows] == list(dict.fromkeys(table["id"]))  # every record, in order
    snv = table[table["kind"] == "snv"].iloc[0]
    row = next(r for r in rows if r[0] == snv["id"])
    assert float(row[1]) == pytest.approx(snv["lldiff"], rel=1e-4) and row[1] != row[2]  # each model's own score
    assert (base / "class_pairs.png").read_bytes()[:4] == b"\x89PNG"


def test_report_holds_the_plots_and_tables(demo_run):
    snakemake(demo_run, "--report", "report.zip")
    import zipfile

    names = zipfile.ZipFile(demo_run / "report.zip").namelist()
    for wanted in ("loss.png", "performance.png", "probes_summary.tsv", "score_distributions.png", "class_auroc.tsv",
                   "findings.tsv", "ism.png", "attention.png", "top_variants.tsv", "class_pairs.png",
                   "rank_correlation.tsv", "speed.tsv"):
        assert any(n.endswith(wanted) for n in names), (wanted, names[:20])


def test_second_run_has_nothing_to_do(demo_run):
    proc = snakemake(demo_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def planned_jobs(workdir: Path, *args: str) -> set[str]:
    """Rules a dry run would run (from its job-stats table), `all` left out."""
    out = snakemake(workdir, "-n", *args).stdout
    if "Job stats:" not in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.strip()} - {"all"}


MODEL_AND_AFTER = {"pretrain", "export_huggingface", "embed", "probe", "finetune", "probe_summary", "predict",
                   "predict_finetuned", "attribute", "score_variants", "variant_report", "variant_figures", "compare_models"}
# a trained probe scores the variants too (variants.demo_variants.heads), and the figures' region
# comes from the scores
PROBE_AND_AFTER = {"probe", "probe_summary", "predict", "attribute", "score_variants", "variant_report",
                   "variant_figures", "compare_models"}
RESOURCES = {"threads": 1, "mem_mb": 1234, "runtime": 7}


@pytest.mark.parametrize("change, expected", [
    ({}, set()),
    ({"genomes": {"demo": {"soft_mask": "upper"}}},
     {"download_reference", "extract_regions", "tokenize"} | MODEL_AND_AFTER),
    ({"genomes": {"demo": {"region_sets": {"promoters": {"upstream": 200}}}}},
     {"extract_regions", "tokenize", "embed", "predict", "predict_finetuned"}),
    ({"tokenizer": {"overlapping": True}}, {"tokenize"} | MODEL_AND_AFTER),
    ({"models": {"demo_conv": {"training": {"lr": 1e-3}}}}, MODEL_AND_AFTER - {"export_huggingface"}),
    ({"embeddings": {"pooling": "cls"}}, {"embed"} | PROBE_AND_AFTER),
    ({"probes": {"promoters": {"classifier": "mlp"}}}, PROBE_AND_AFTER),
    # the fine-tune is applied to a region set and scores the variants (finetuned_heads)
    ({"probes": {"promoters": {"finetune": {"lr": 1e-3}}}},
     {"finetune", "probe_summary", "predict_finetuned", "score_variants", "variant_report", "variant_figures",
      "compare_models"}),
    ({"variant_scoring": {"rc_average": False}}, {"score_variants", "variant_report", "variant_figures",
                                                  "compare_models"}),
    ({"variants": {"demo_variants": {"figure_region": "chr1:20001-20600"}}}, {"variant_figures"}),
    # where and how fast, not what: resources, logging and checkpoint cadence, download retries
    ({"embeddings": {"resources": {"gpus": 1, **RESOURCES}}, "variant_scoring": {"resources": {"gpus": 1, **RESOURCES}},
      "probes": {"promoters": {"finetune": {"resources": {"gpus": 1, **RESOURCES}}}},
      "models": {"demo_mlm": {"resources": {"processes": 2, **RESOURCES},
                              "training": {"log_every": 7, "checkpoint_every": 50}}},
      "download": {"retries": 1, "timeout_seconds": 5}}, set()),
], ids=["unchanged", "reference", "regions", "tokenizer", "pretrain", "embeddings", "probe", "finetune", "scoring",
        "figure", "resources"])
def test_a_config_change_reruns_only_the_rules_it_affects(demo_run, change, expected):
    config = yaml.safe_load((demo_run / "config/config.yaml").read_text())

    def merge(into, update):
        for key, value in update.items():
            merge(into.setdefault(key, {}), value) if isinstance(value, dict) else into.__setitem__(key, value)

    merge(config, change)
    assert planned_jobs(demo_run, "--configfile", str(write_config(demo_run, config))) == expected


def test_sharded_scoring_and_embedding_give_the_one_job_files(demo_run, tmp_path):
    """A call set scored in three shard jobs and a region set embedded in three, each joined: the
    one job's VCF, index, table, summary and .npy byte for byte; changing the shard counts runs
    only the scoring and embedding jobs."""
    work = tmp_path / "sharded"
    shutil.copytree(demo_run, work, symlinks=True)
    # one region set embedded (646 regions: 7 chunks of 100), one model and no trained heads in the scoring
    config = promoter_task_only(yaml.safe_load((work / "config/config.yaml").read_text()))
    config["variants"]["demo_variants"]["models"] = ["demo_mlm"]
    config["variant_scoring"]["chunk_records"] = 200  # 530 records: 3 chunks
    # scored: the 20 records each side of the two chunk edges (the others OUTSIDE_REGIONS, still
    # written by their chunk's shard)
    records = [line.split("\t") for line in (REPO / "config/demo/variants.vcf").read_text().splitlines()
               if not line.startswith("#")]
    config["variants"]["demo_variants"]["regions"] = [f"{records[edge - 20][0]}:{records[edge - 20][1]}-"
                                                      f"{records[edge + 19][1]}" for edge in (200, 400)]
    config["embeddings"]["chunk_regions"] = 100  # 646 regions: 7 chunks
    until = ("--until", "score_variants", "embed")
    snakemake(work, *until, "--configfile", str(write_config(work, config)))
    outputs = sorted([*(work / "results/demo/variants").glob("demo_mlm/demo_variants.*"),
                      *(work / "results/demo/embeddings").glob("*/promoters_vs_background.*")])
    assert len(outputs) == 6  # .vcf.gz, .tbi, .tsv, .summary.json; .npy and index
    one_job = {path: path.read_bytes() for path in outputs}
    config["variants"]["demo_variants"]["shards"] = 3
    config["embeddings"]["shards"] = 3
    sharded = str(write_config(work, config))
    assert planned_jobs(work, *until, "--configfile", sharded) == {"score_variants_shard", "score_variants",
                                                                   "embed_shard", "embed"}
    snakemake(work, *until, "--configfile", sharded)
    for path, data in one_job.items():
        assert path.read_bytes() == data, path
    table = pd.read_csv(work / "results/demo/variants/demo_mlm/demo_variants.tsv", sep="\t")
    assert len(table) >= 530 and 40 <= (table["status"] == "OK").sum() < 100, table["status"].value_counts()
    assert (work / "benchmarks/demo/score_variants_demo_mlm_demo_variants_2-of-3.tsv").exists()
    assert not list((work / "results/demo").glob("*/*/*.shards/*"))  # the parts are temporary
    config["variants"]["demo_variants"]["shards"] = 4
    proc = snakemake(work, *until, "--configfile", str(write_config(work, config)), check=False)
    logs = "".join(p.read_text() for p in (work / "logs/demo").glob("score_variants_*4.log"))
    assert proc.returncode != 0 and "4 shards, but its 530 records make 3 chunk(s)" in logs


def test_a_copied_run_with_other_cores_and_python_has_nothing_to_do(demo_run, tmp_path):
    """Reruns depend on the config's result settings and the code, not on paths, the
    interpreter or the cores: a finished run moved elsewhere, run by a Python at another path
    with other --cores, has nothing to do."""
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(demo_run, moved, symlinks=True)
    other_venv = tmp_path / "other-venv"
    other_venv.symlink_to(Path(sys.prefix), target_is_directory=True)
    python = other_venv / "bin" / Path(sys.executable).name
    proc = subprocess.run([str(python), "-m", "snakemake", "--cores", "1", "-n"], cwd=moved, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_a_code_change_in_a_script_reruns_its_rule(demo_run):
    script = demo_run / "workflow_scripts/variant_report.py"
    original, stat = script.read_text(), script.stat()
    try:
        script.write_text(original.replace("def main(smk):", "def main(smk):  # changed"))
        assert planned_jobs(demo_run) == {"variant_report"}
    finally:  # the script as it was, modification time included
        script.write_text(original)
        os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(demo_run) == set()


def test_gpus_other_than_processes_stop_the_dry_run(demo_run, tmp_path):
    config = yaml.safe_load((demo_run / "config/config.yaml").read_text())
    config["models"]["demo_mlm"]["resources"] = {"gpus": 2}
    proc = snakemake(demo_run, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0
    assert "resources.processes (1) must equal resources.gpus (2): one process per GPU" in proc.stdout + proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine that torch sees no GPU on")
def test_gpus_without_a_gpu_stop_the_job_and_leave_nothing(demo_run, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(demo_run, workdir)
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["variant_scoring"]["resources"] = {"gpus": 1}
    target = "results/demo/variants/demo_mlm/demo_variants.vcf.gz"
    proc = snakemake(workdir, target, "--configfile", str(write_config(workdir, config)), "--forcerun", "score_variants",
                     check=False)
    assert proc.returncode != 0
    log = (workdir / "logs/demo/score_variants_demo_mlm_demo_variants.log").read_text()
    assert "variant_scoring.resources.gpus is 1, but torch" in log and "sees no CUDA GPU" in log
    assert "Traceback" not in log
    assert not (workdir / target).exists()


def test_bad_bed_stops_with_file_and_line_and_leaves_nothing(demo_run):
    bed = demo_run / "bad.bed"
    bed.write_text("chr1\t100\t200\tok\nchr1\t500\t400\tbackwards\n")
    config = yaml.safe_load((demo_run / "config/config.yaml").read_text())
    config["genomes"]["demo"]["region_sets"] = {"broken": {"type": "bed", "bed": "bad.bed"}}
    config["models"], config["probes"], config["variants"] = {}, {}, {}
    proc = snakemake(demo_run, "--configfile", str(write_config(demo_run, config)), check=False)
    assert proc.returncode != 0
    log = (demo_run / "logs/demo/extract_regions_broken.log").read_text()
    assert "bad.bed, line 2: start (500) must be >= 0 and below end (400)" in log
    assert "Traceback" not in log
    assert not (demo_run / "results/demo/regions/broken.parquet").exists()


def test_checksum_mismatch_leaves_no_reference(tmp_path):
    copy_workflow(tmp_path)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["genomes"]["demo"]["checksum"] = "md5:" + "0" * 32
    proc = snakemake(tmp_path, "resources/demo/genome.fa.gz", "--configfile",
                     str(write_config(tmp_path, config)), check=False)
    assert proc.returncode != 0
    assert "checksum" in (tmp_path / "logs/demo/download_reference.log").read_text().lower()
    assert not list((tmp_path / "resources").rglob("genome.fa.gz*"))


def test_two_training_processes_through_the_rule_equal_one(tmp_path):
    """resources.processes: 2 runs the pretrain rule's script under torchrun (gloo on the CPU);
    the model equals the one-process model at the same batch size."""
    weights = {}
    for processes in (1, 2):
        run = tmp_path / f"p{processes}"
        run.mkdir()
        copy_workflow(run)
        config = small_demo_config()
        config["models"]["demo_mlm"]["training"].update(max_steps=8, eval_every=4, checkpoint_every=100,
                                                        micro_batch_size=16)
        config["models"]["demo_mlm"]["resources"] = {"processes": processes, "threads": 2}
        snakemake(run, "results/models/demo_mlm/model.safetensors", "--configfile", str(write_config(run, config)))
        log = (run / "logs/models/demo_mlm/pretrain.log").read_text()
        assert f"{processes} process(es)" in log
        from genofm.model import DNALM

        weights[processes] = DNALM.from_pretrained(run / "results/models/demo_mlm").state_dict()
    for name, tensor in weights[1].items():
        torch.testing.assert_close(weights[2][name], tensor, atol=2e-5, rtol=1e-4, msg=name)


def test_a_callset_that_scores_nothing_fails_on_the_terminal_and_leaves_nothing(demo_run, tmp_path):
    """Contig names that match nothing: the job fails, the terminal says why and which config
    key fixes it, and no output is left."""
    workdir = tmp_path / "copy"
    shutil.copytree(demo_run, workdir, symlinks=True)
    lines = (workdir / "config/demo/variants.vcf").read_text().splitlines()
    renamed = [line.replace("chr1", "scaffold_1").replace("chr2", "scaffold_2") for line in lines]
    (workdir / "renamed.vcf").write_text("\n".join(renamed) + "\n")
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["variants"]["renamed"] = {**config["variants"]["demo_variants"], "vcf": "renamed.vcf"}
    target = "results/demo/variants/demo_mlm/renamed.vcf.gz"
    proc = snakemake(workdir, target, "--configfile", str(write_config(workdir, config)), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "530 of 530 records were not scored (UNKNOWN_CONTIG: 530); a run that scores nothing fails" in out, out[-3000:]
    assert "variants.renamed.contig_aliases" in out
    log = (workdir / "logs/demo/score_variants_demo_mlm_renamed.log").read_text()
    assert "<callset>" not in log  # every message, the warnings too, names the call set's own keys
    assert "(UNKNOWN_CONTIG); variants.renamed.contig_aliases maps" in log
    assert not list((workdir / "results/demo/variants/demo_mlm").glob("renamed*"))


def test_a_fasta_library_is_probed_fine_tuned_and_explained_by_saturation_mutagenesis(demo_run, tmp_path):
    """The demo's oligo-library task on its first 4,000 oligos, with the suite's shortened demo
    model: a FASTA region set labelled from its table, in file order, through embedding, probe,
    a full max-pooled fine-tune (the shipped settings) and saturation mutagenesis of the
    fine-tune on the `sites` oligos only, then TF-MoDISco, which must bring the planted JASPAR
    motifs back (3 minutes on an Intel Xeon, 8 on an AMD EPYC, 2 cores;
    demo_quality.py checks the full library)."""
    workdir = tmp_path / "copy"
    shutil.copytree(demo_run, workdir, symlinks=True)
    records = gzip.decompress((REPO / "config/demo/library.fa.gz").read_bytes()).decode().split(">")[1:4001]
    (workdir / "cut.fa").write_text("".join(">" + r for r in records))
    labels = pd.read_csv(REPO / "config/demo/library_labels.tsv.gz", sep="\t")
    labels.to_csv(workdir / "cut_labels.tsv", sep="\t", index=False)  # rows naming no record are only logged
    shipped = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["genomes"]["demo"]["region_sets"]["library"] = shipped["genomes"]["demo"]["region_sets"]["library"] | {
        "fasta": "cut.fa", "labels": {"tsv": "cut_labels.tsv", "column": "label"}}
    task = shipped["probes"]["library"]
    task["attribution"]["max_regions"] = 150
    config["probes"]["library"] = task
    out = "results/demo/probes/demo_conv/library"
    snakemake(workdir, f"{out}/attribution/motifs.tsv", f"{out}/summary.tsv", "--configfile",
              str(write_config(workdir, config)))
    regions = read_regions(workdir / "results/demo/regions/library.parquet")
    assert regions["name"].tolist() == [r.split("\n")[0] for r in records]  # the library's own order
    assert regions["label"].tolist() == labels["label"].iloc[:4000].tolist()
    assert (regions["end"] == 100).all() and (regions["chrom"] == regions["name"]).all()
    index = pd.read_parquet(workdir / f"{out}/attribution/index.parquet")
    wanted = regions.loc[regions["label"] == "sites", "name"].iloc[:150].tolist()
    assert index["name"].tolist() == wanted and np.isnan(index["baseline_target"]).all()
    import pyarrow.parquet as pq

    meta = pq.read_schema(workdir / f"{out}/attribution/index.parquet").metadata
    assert meta[b"method"] == b"ism" and meta[b"target"] == b"log-odds of class sites (fine-tune)"
    hypothetical = np.load(workdir / f"{out}/attribution/hypothetical.npy")
    assert hypothetical.shape == (150, 100, 4) and np.abs(hypothetical).sum() > 0
    metrics = json.loads((workdir / "results/demo/finetune/demo_conv/library/metrics.json").read_text())
    assert metrics["results"]["finetune_full"]["auroc"]["mean"] > 0.8, metrics["results"]  # off the loss plateau
    log = (workdir / "logs/demo/extract_regions_library.log").read_text()
    assert "6000 row(s) name no region" in log
    # the motifs (docs/attributions.md), on both CPUs tried: NRF1 and one more (ELK1 or YY1) best
    # matches, YY1 and CTCF among the top matches; ELK1 only on one (float32 kernels differ)
    planted = pd.read_csv(REPO / "config/demo/motifs.tsv", sep="\t")["motif_id"].tolist()
    best, listed = recovered(pd.read_csv(workdir / f"{out}/attribution/motifs.tsv", sep="\t"), planted)
    assert len(best) >= 2 and len(listed) >= 3, (best, listed)
