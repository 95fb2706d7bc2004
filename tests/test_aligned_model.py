"""The alignment-aware model (GPN-MSA's design): the reference base plus the bases other species
align to it, through pretraining, embeddings and the masked LLR.

The genome here is random (i.i.d. bases), so a single-sequence model can only guess; species s1
carries the reference base at 90% of positions, s2 is random with gaps, s3 is an exact copy
(used only to check the coordinates). A model reading s1 must learn to predict the reference
base from it.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest
import torch
from sklearn.metrics import roc_auc_score

from genofm.alignment import LETTERS, build_arrays
from genofm.data import aligned_windows, check_single_bases, draw_windows, load_pool, reverse_complement_aligned
from genofm.data import reverse_complement_tokens, window_tokens
from genofm.embed import EmbedConfig, embed_regions
from genofm.errors import GenofmInputError
from genofm.model import DNALM, ModelConfig
from genofm.pretrain import DataSpec, TrainConfig, _architecture, train
from genofm.sequence import reverse_complement
from genofm.tokenizer import KmerTokenizer
from genofm.tokens import tokenize_regions
from genofm.variant_scoring import ScoringConfig
from genofm.variants import CallsetConfig, ScoringInputs, ScoringOutputs, score_vcf

SPECIES = ["s1", "s2"]  # what the model reads; s3 (a copy of the reference) only checks coordinates
LENGTHS = {"c1": 24_000, "c2": 6_000}
BLOCK = 1000
ARCH = dict(vocab_size=KmerTokenizer(k=1).vocab_size, max_len=65, n_layers=1, d_model=32, n_heads=2, d_ff=64)
TRAIN = dict(max_steps=80, batch_size=16, micro_batch_size=16, lr=5e-3, warmup_steps=5, eval_every=80,
             eval_windows=64, checkpoint_every=80, log_every=40, seed=3)


def write_alignment(root, rng, reference: dict[str, str], copy_rate: float = 0.9) -> tuple:
    """A MAF of the reference ("ref") and s1, s2, s3 in blocks of BLOCK bases; returns the MAF
    and s1's bases per contig."""
    lines, s1_bases = ["##maf version=1", ""], {}
    for contig, seq in reference.items():
        ref = np.array(list(seq))
        s1 = np.where(rng.random(ref.size) < copy_rate, ref, rng.choice(list("ACGT"), ref.size))
        s2 = np.where(rng.random(ref.size) < 0.2, "-", rng.choice(list("ACGT"), ref.size))
        s1_bases[contig] = "".join(s1)
        for start in range(0, ref.size, BLOCK):
            end = min(ref.size, start + BLOCK)
            rows = {"ref": ref, "s1": s1, "s2": s2, "s3": ref}
            lines.append("a score=0")
            for name, row in rows.items():
                text = "".join(row[start:end])
                size = end - start - text.count("-")
                lines.append(f"s {name}.{contig} {start} {size} + {ref.size} {text}")
            lines.append("")
    path = root / "aln.maf"
    path.write_text("\n".join(lines) + "\n")
    return path, s1_bases


def region_set(root, name: str, fasta: pysam.FastaFile, contig: str, width: int, tokenizer: KmerTokenizer):
    """Tiles of `width` over a contig, every other one on the '-' strand (reverse-complemented)."""
    rows = []
    for i, start in enumerate(range(0, fasta.get_reference_length(contig) - width + 1, width)):
        strand = "-" if i % 2 else "+"
        seq = fasta.fetch(contig, start, start + width)
        rows.append((contig, start, start + width, strand, f"{name}{i}", None,
                     reverse_complement(seq) if strand == "-" else seq))
    df = pd.DataFrame(rows, columns=["chrom", "start", "end", "strand", "name", "label", "sequence"])
    parquet = root / f"{name}.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), parquet)
    tokenize_regions(parquet, tokenizer, root / name)
    return parquet, str(root / name)


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    root = tmp_path_factory.mktemp("aligned")
    rng = np.random.default_rng(11)
    reference = {c: "".join(rng.choice(list("ACGT"), n)) for c, n in LENGTHS.items()}
    (root / "ref.fa").write_text("".join(f">{c}\n{s}\n" for c, s in reference.items()))
    pysam.faidx(str(root / "ref.fa"))
    fasta = pysam.FastaFile(str(root / "ref.fa"))
    maf, s1 = write_alignment(root, rng, reference)
    build_arrays(maf, "ref", ["s1", "s2", "s3"], root / "arrays", fasta=fasta)
    tokenizer = KmerTokenizer(k=1)
    train_parquet, train_set = region_set(root, "train", fasta, "c1", 500, tokenizer)
    valid_parquet, valid_set = region_set(root, "valid", fasta, "c2", 500, tokenizer)
    return {"root": root, "fasta": root / "ref.fa", "arrays": root / "arrays", "s1": s1, "reference": reference,
            "train": train_set, "valid": valid_set, "valid_parquet": valid_parquet}


@pytest.fixture(scope="module")
def trained(genome):
    """The alignment-aware model and the same network without the alignment, same data and steps."""
    root = genome["root"]
    data = [DataSpec("g", [genome["train"]], [genome["valid"]], alignment=str(genome["arrays"]))]
    aware = train(ModelConfig(**ARCH, aligned_species=SPECIES), TrainConfig(**TRAIN), data, root / "aware",
                  root / "aware_ckpt", threads=1)
    plain = train(ModelConfig(**ARCH), TrainConfig(**TRAIN), [DataSpec("g", [genome["train"]], [genome["valid"]])],
                  root / "plain", root / "plain_ckpt", threads=1)
    return {"aware": aware, "plain": plain, "dir": root / "aware"}


def test_aligned_columns_follow_the_window_on_both_strands(genome):
    """s3 copies the reference: its codes, read along any window (either strand, after the
    reverse-complement augmentation too), spell the window's own tokens."""
    from genofm.alignment import AlignedColumns

    pool, tokenizer = load_pool("g", [genome["train"]])
    alignment = AlignedColumns(genome["arrays"])
    draws = draw_windows([pool], np.array([1.0]), 64, 65, np.random.default_rng(0))
    ids = window_tokens([pool], draws, 65)
    aligned = aligned_windows([pool], draws, 65, [alignment], ["s3", "s1"])
    assert aligned.shape == (64, 65, 2) and (aligned[:, 0] == 0).all()
    assert set(pool.index["strand"].iloc[draws[:, 1]]) == {"+", "-"}
    flipped_ids = reverse_complement_tokens(ids, tokenizer)
    flipped = reverse_complement_aligned(aligned, ids)
    for tokens, codes in ((ids, aligned), (flipped_ids, flipped)):
        for row in range(len(tokens)):
            bases = tokenizer.decode(tokens[row])
            assert LETTERS[codes[row, 1:1 + len(bases), 0]].tobytes().decode() == bases
            s1 = LETTERS[codes[row, 1:1 + len(bases), 1]].tobytes().decode()
            assert 0.8 < np.mean([a == b for a, b in zip(s1, bases)]) < 1.0  # s1: 90% the reference's


def test_the_model_learns_the_reference_base_from_the_other_species(trained):
    """On random DNA the plain model guesses (accuracy near 1/4); reading s1, which carries the
    reference base 90% of the time, the model predicts masked bases far better."""
    accuracy = {name: pd.read_csv(trained["dir"].parent / name / "metrics.tsv", sep="\t")["val_acc"].dropna().iloc[-1]
                for name in ("plain", "aware")}
    assert accuracy["plain"] < 0.4 and accuracy["aware"] > 0.75, accuracy
    config = json.loads((trained["dir"] / "config.json").read_text())
    assert config["aligned_species"] == SPECIES and config["extra"]["alignment_reference"] == ["ref"]
    model = DNALM.from_pretrained(trained["dir"])
    assert model.cfg.aligned_species == SPECIES


def test_two_processes_train_the_alignment_aware_model_as_one(genome, tmp_path):
    """Under torchrun each process reads the aligned bases of its own share of the step: the
    weights equal a single process's."""
    import subprocess
    import sys

    from conftest import REPO

    spec = json.dumps({"architecture": {**ARCH, "aligned_species": SPECIES},
                       "training": {**TRAIN, "max_steps": 6, "batch_size": 8, "micro_batch_size": 4,
                                    "rc_augment": True, "eval_every": 6},
                       "data": [{"genome": "g", "train": [genome["train"]], "valid": [genome["valid"]],
                                 "alignment": str(genome["arrays"])}]})
    script = [str(REPO / "workflow_scripts/pretrain.py"), "--spec", spec, "--threads", "1"]
    for name, launcher in (("one", [sys.executable]),
                           ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                    "--nproc_per_node", "2"])):
        proc = subprocess.run([*launcher, *script, "--out", str(tmp_path / name), "--checkpoints",
                               str(tmp_path / f"{name}_ckpt")], capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    one, two = (DNALM.from_pretrained(tmp_path / name).state_dict() for name in ("one", "two"))
    assert set(one) == set(two) and "aligned.weight" in one
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, atol=2e-5, rtol=1e-4, msg=name)


def test_the_model_needs_its_aligned_bases(trained):
    model = DNALM.from_pretrained(trained["dir"])
    ids = torch.full((1, 5), 6)
    with pytest.raises(GenofmInputError, match="aligned bases of 2 species"):
        model(ids)
    with pytest.raises(GenofmInputError, match="does not read an alignment"):
        DNALM(ModelConfig(**ARCH))(ids, aligned=torch.zeros(1, 5, 2, dtype=torch.uint8))
    out = model(ids, aligned=torch.zeros(1, 5, 2, dtype=torch.uint8)).logits
    other = model(ids, aligned=torch.ones(1, 5, 2, dtype=torch.uint8)).logits  # every species has an A
    assert out.shape == (1, 5, ARCH["vocab_size"]) and not torch.allclose(out, other)


def test_plain_checkpoints_keep_their_fingerprint():
    """A single-sequence model's checkpoint identity does not mention alignments (checkpoints
    written before they existed still resume)."""
    assert "aligned_species" not in _architecture(ModelConfig(**ARCH))
    assert _architecture(ModelConfig(**ARCH, aligned_species=SPECIES))["aligned_species"] == SPECIES


def test_k_mer_tokens_cannot_be_placed_on_the_alignment(genome, tmp_path):
    fasta = pysam.FastaFile(str(genome["fasta"]))
    _, kmer_set = region_set(tmp_path, "k3", fasta, "c2", 600, KmerTokenizer(k=3))
    pool, tokenizer = load_pool("g", [kmer_set])
    with pytest.raises(GenofmInputError, match="single-nucleotide tokens"):
        check_single_bases(pool, tokenizer)


def snv_vcf(path, genome, rng, n: int = 60):
    """SNVs in c2: half with the ALT s1 carries there (where s1 differs from the reference),
    half with another ALT where s1 agrees with the reference. CLASS says which."""
    ref, s1 = genome["reference"]["c2"], genome["s1"]["c2"]
    positions = np.arange(100, len(ref) - 100)
    differs = positions[[ref[p] != s1[p] for p in positions]]
    agrees = positions[[ref[p] == s1[p] for p in positions]]
    rows = []
    for p in rng.choice(differs, n // 2, replace=False):
        rows.append((p, ref[p], s1[p], "other_species"))
    for p in rng.choice(agrees, n // 2, replace=False):
        rows.append((p, ref[p], rng.choice([b for b in "ACGT" if b != ref[p]]), "conserved"))
    lines = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c},length={n}>" for c, n in LENGTHS.items()),
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"c2\t{p + 1}\t.\t{r}\t{a}\t.\tPASS\tCLASS={c}" for p, r, a, c in sorted(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_llr_reads_the_alignment(genome, trained, tmp_path):
    """An ALT that the other species carries scores far above one where they keep the
    reference base; without the alignment the model cannot score at all."""
    vcf = snv_vcf(tmp_path / "snvs.vcf", genome, np.random.default_rng(5))
    outputs = ScoringOutputs(tmp_path / "out.vcf.gz", tmp_path / "out.tsv", tmp_path / "summary.json")
    cfg = ScoringConfig(window=64, batch_size=16)
    callset = CallsetConfig(class_info_key="CLASS")
    score_vcf(ScoringInputs(trained["dir"], genome["fasta"], vcf, alignment=genome["arrays"]), outputs, cfg, callset)
    table = pd.read_csv(outputs.table, sep="\t")
    assert (table["status"] == "OK").all() and table["llr"].notna().all() and table["emb_cosine"].notna().all()
    carried, kept = (table.loc[table["class"] == c, "llr"].to_numpy() for c in ("other_species", "conserved"))
    auroc = (carried[:, None] > kept[None, :]).mean()
    assert auroc > 0.9 and np.median(carried) > 0 > np.median(kept)
    with pytest.raises(GenofmInputError, match="alignment-aware model"):
        score_vcf(ScoringInputs(trained["dir"], genome["fasta"], vcf), ScoringOutputs(
            tmp_path / "x.vcf.gz", tmp_path / "x.tsv", tmp_path / "x.json"), cfg, callset)
    assert not (tmp_path / "x.tsv").exists()


def test_region_embeddings_read_the_alignment(genome, trained, tmp_path):
    cfg = EmbedConfig()
    n = embed_regions(trained["dir"], genome["valid_parquet"], tmp_path / "e.npy", tmp_path / "e.parquet", cfg,
                      alignment=genome["arrays"])
    vectors = np.load(tmp_path / "e.npy")
    assert n == len(vectors) == 12 and np.isfinite(vectors).all()
    # the same regions with another alignment (s1 a plain copy of s3) embed differently
    other = genome["root"] / "arrays_copy"
    if not other.exists():
        from genofm.alignment import AlignedColumns

        source = AlignedColumns(genome["arrays"])
        other.mkdir()
        meta = json.loads((genome["arrays"] / "alignment.json").read_text())
        (other / "alignment.json").write_text(json.dumps(meta))
        for contig in source.contigs:
            codes = source.fetch(contig, 0, source.contigs[contig]).copy()
            codes[:, 1] = codes[:, 3]
            np.save(other / f"{contig}.npy", codes)
    embed_regions(trained["dir"], genome["valid_parquet"], tmp_path / "o.npy", tmp_path / "o.parquet", cfg,
                  alignment=other)
    assert not np.allclose(np.load(tmp_path / "o.npy"), vectors)
    with pytest.raises(GenofmInputError, match="needs the genome's alignment"):
        embed_regions(trained["dir"], genome["valid_parquet"], tmp_path / "n.npy", tmp_path / "n.parquet", cfg)


def test_fine_tuning_reads_the_alignment(tmp_path):
    """Regions whose label only the other species tell (they carry all A or all T over random
    reference bases): a fine-tuned alignment-aware classifier separates them."""
    from genofm.finetune import FinetuneConfig, cross_validate_finetune
    from genofm.probe import ProbeConfig, folds_of

    torch.manual_seed(0)
    DNALM(ModelConfig(**{**ARCH, "max_len": 64}, aligned_species=SPECIES,
                      extra={"tokenizer": {"k": 1, "overlapping": False}})).save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(2)
    sequences = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(40)]
    labels = np.array(["a", "t"] * 20)
    aligned = [np.stack([np.full(80, 1 if label == "a" else 4), np.zeros(80)], 1).astype(np.uint8)
               for label in labels]
    folds = folds_of(labels, np.array(["c"] * 40), ProbeConfig(folds=2))
    cfg = FinetuneConfig(method="lora", epochs=4, lr=1e-2, batch_size=8)
    summary, _ = cross_validate_finetune(tmp_path / "model", sequences, labels, folds, cfg, aligned=aligned)
    assert summary["auroc"]["mean"] > 0.9
    with pytest.raises(GenofmInputError, match="fine-tuned with the regions' aligned bases"):
        cross_validate_finetune(tmp_path / "model", sequences, labels, folds, cfg)


# --- through the workflow: the demo genome with a simulated alignment --------------------------

@pytest.mark.workflow
def test_an_alignment_aware_model_through_the_workflow(tmp_path):
    """Pretraining, embeddings, the probe and its fine-tuning, scoring (with phyloP beside it) and
    the report figures of a model reading four aligned species, on single-nucleotide tokens; a
    config mistake stops before any job."""
    import subprocess
    import sys

    import yaml

    from conftest import REPO, copy_workflow, promoter_task_only, require_tool
    from test_conservation import demo_alignment

    require_tool("phyloP")
    workdir = copy_workflow(tmp_path)
    config = promoter_task_only(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    species = ["sp1", "sp2", "sp3", "sp4"]
    config["genomes"]["demo"]["alignment"] = {"source": str(demo_alignment(tmp_path / "demo.maf")),
                                              "reference_species": "demo", "species": species,
                                              "neutral_sites": 5000}
    config["tokenizer"] = {"k": 1, "overlapping": False}
    model = config["models"]["demo_mlm"]
    model.update(aligned_species=species, export_huggingface=False)
    model["architecture"].update(n_layers=2, d_model=64, d_ff=128)
    model["training"].update(max_steps=10, eval_every=10, checkpoint_every=10, metrics_every=10, log_every=10)
    config["models"] = {"demo_msa": model}
    config["probes"]["promoters"]["model"] = "demo_msa"
    config["probes"]["promoters"]["finetune"].update(epochs=1)
    config["probes"]["promoters"]["folds"] = 2
    config["variants"]["demo_variants"]["models"] = ["demo_msa"]
    config["variant_scoring"]["figure_tokens"] = 40
    for section in ("embeddings", "variant_scoring"):  # a thread a job: two jobs share the 2 cores
        config[section].setdefault("resources", {})["threads"] = 1

    def snakemake(name, settings, *targets):
        (workdir / name).write_text(yaml.safe_dump(settings))
        return subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "2", "--configfile", name],
                              cwd=workdir, capture_output=True, text=True, timeout=1500)

    proc = snakemake("msa.yaml", config)
    assert proc.returncode == 0, proc.stderr[-4000:]
    saved = json.loads((workdir / "results/models/demo_msa/config.json").read_text())
    assert saved["aligned_species"] == species
    table = pd.read_csv(workdir / "results/demo/variants/demo_msa/demo_variants.tsv", sep="\t")
    snvs = table[(table["status"] == "OK") & (table["ref"].str.len() == 1) & (table["alt"].str.len() == 1)]
    assert len(snvs) > 50 and snvs["llr"].notna().all() and snvs["phylop"].notna().mean() > 0.9

    # phyloP beside the model: the neutral model on 5000 four-fold sites, the MAF header's tree
    fit = json.loads((workdir / "results/demo/conservation/neutral.json").read_text())
    assert fit["columns"] == 5000 and fit["tree"] == "(demo,((sp1,sp2),(sp3,sp4)));"
    # codon positions 1-2 evolve slowly in the simulation (a tenth of position 3's rate), and most
    # missense SNVs sit there
    coding = snvs[snvs["codon_position"].notna()]
    slow = coding["codon_position"] < 3
    # (a column of position 3 shows no change in all four species 44% of the time: AUROC ~0.73)
    assert roc_auc_score(slow, coding["phylop"]) > 0.65
    assert coding["phylop"][slow].mean() > coding["phylop"][~slow].mean() + 0.35
    by_class = snvs.groupby("class")["phylop"].mean()
    assert by_class["missense"] > by_class["synonymous"] + 0.25
    with gzip.open(workdir / "results/demo/variants/demo_msa/demo_variants.vcf.gz", "rt") as handle:
        text = handle.read()
    assert "##INFO=<ID=GFM_PHYLOP," in text and "GFM_PHYLOP=" in text
    findings = pd.read_csv(workdir / "results/demo/variants/demo_msa/demo_variants/findings.tsv", sep="\t")
    assert {"phylop", "llr"} <= set(findings["score"])
    assert table.loc[table["status"] == "OK", "emb_cosine"].notna().all()  # indels too
    assert np.load(workdir / "results/demo/embeddings/demo_msa/promoters_vs_background.npy").shape[1] == 64
    assert (workdir / "results/demo/variants/demo_msa/demo_variants/ism.png").exists()
    tuned = json.loads((workdir / "results/demo/finetune/demo_msa/promoters/metrics.json").read_text())
    assert tuned["method"] == "finetune_ia3" and tuned["trainable_parameters"]["trainable"] > 0

    wrong = {**config, "tokenizer": {"k": 6, "overlapping": False}}
    proc = snakemake("wrong.yaml", wrong, "-n")
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "models.demo_msa.aligned_species" in said and "tokenizer.k: 1" in said
