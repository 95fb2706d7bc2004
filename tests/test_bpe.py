"""BPE tokenization trained by the workflow (genofm.bpe): deterministic training in genofm's id
layout, the same ids from transformers, and a BPE model through pretraining, embedding, variant
scoring (pseudo-log-likelihood) and the Hugging Face export; bad settings are refused by name."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pysam
import pytest
import yaml

from conftest import REPO, write_fasta
from genofm.bpe import ALPHABET, bases_per_token, train_bpe, write_bpe
from genofm.config import CallsetConfig, EmbedConfig, ScoringConfig
from genofm.errors import GenofmInputError
from genofm.loading import load_model_and_tokenizer
from genofm.model import ModelConfig
from genofm.pretrain import DataSpec, TrainConfig, train
from genofm.subword import SubwordTokenizer
from genofm.tokenizer import SPECIAL_TOKENS
from genofm.tokens import load_token_set, tokenize_regions


def demo_chromosomes() -> dict[str, str]:
    with pysam.FastxFile(str(REPO / "config/demo/genome.fa.gz")) as fasta:
        return {entry.name: entry.sequence for entry in fasta}


def write_regions(path, sequences: list[str], chrom: str = "c") -> str:
    starts = np.arange(len(sequences), dtype=np.int64) * 10_000
    df = pd.DataFrame({"chrom": chrom, "start": starts, "end": starts + np.array(list(map(len, sequences)), int),
                       "strand": "+", "name": [f"r{i}" for i in range(len(sequences))], "label": None,
                       "sequence": pd.Series(sequences, dtype=object)})
    df[["chrom", "start", "end", "strand", "name", "label", "sequence"]].to_parquet(path, index=False)
    return str(path)


def tiles(seq: str, window: int, stride: int) -> list[str]:
    return [seq[i:i + window] for i in range(0, len(seq) - window + 1, stride)]


def random_dna(n: int, seed: int, alphabet="ACGT") -> str:
    return "".join(np.random.default_rng(seed).choice(list(alphabet), n))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's pretraining split: BPE (4096 tokens) learnt on chr1's 1020-base tiles (stride
    510, as pretrain_train), chr2's tiles held out (as pretrain_valid), soft-masked and with Ns."""
    root = tmp_path_factory.mktemp("bpe")
    chromosomes = demo_chromosomes()
    train_parquet = write_regions(root / "train.parquet", tiles(chromosomes["chr1"], 1020, 510), "chr1")
    valid_parquet = write_regions(root / "valid.parquet", tiles(chromosomes["chr2"], 1020, 1020), "chr2")
    path = write_bpe([train_parquet], root / "tokenizer" / "tokenizer.json", vocab_size=4096)
    return {"root": root, "tokenizer": path, "train": train_parquet, "valid": valid_parquet,
            "chromosomes": chromosomes}


# --- training -------------------------------------------------------------------------------

def test_training_is_deterministic_and_honours_the_layout_and_vocabulary_size(demo, tmp_path):
    again = write_bpe([demo["train"]], tmp_path / "tokenizer.json", vocab_size=4096)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(demo["tokenizer"].read_bytes()).digest()
    tokenizer = SubwordTokenizer.load(demo["tokenizer"])
    assert tokenizer.kind == "BPE" and tokenizer.vocab_size == 4096
    assert tokenizer.vocab[:11] == [*SPECIAL_TOKENS, *sorted(ALPHABET)]  # genofm's specials, then the bases
    assert (tokenizer.hf_ids == np.arange(6, 4096)).all()  # our ids are the tokenizer.json's own
    small = train_bpe([demo["train"]], vocab_size=300)
    assert small.get_vocab_size() == 300


def test_a_planted_repeat_becomes_one_or_few_tokens(tmp_path):
    planted = "GATTACACCGGTTAGCATGCAAGT"  # 24 bases, in every training sequence
    sequences = [random_dna(300, seed) + planted + random_dna(300, seed + 1000) for seed in range(200)]
    parquet = write_regions(tmp_path / "planted.parquet", sequences)
    tokenizer = SubwordTokenizer.load(write_bpe([parquet], tmp_path / "tokenizer.json", vocab_size=400))
    planted_tokens = tokenizer.encode(planted, add_special_tokens=False)
    random_tokens = tokenizer.encode(random_dna(24, 99), add_special_tokens=False)
    assert planted_tokens.size <= 2 < 6 <= random_tokens.size, (planted_tokens.size, random_tokens.size)


def test_round_trip_and_transformers_give_the_same_ids(demo, tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer = SubwordTokenizer.load(demo["tokenizer"])
    chr2 = demo["chromosomes"]["chr2"].upper()
    gap = chr2.index("N")
    sequences = [random_dna(2000, 1), random_dna(500, 2, "ACGTN"), chr2[gap - 300:gap + 300], chr2[:5000], "N", "A"]
    assert any("N" in s for s in sequences[2:4])
    direct = PreTrainedTokenizerFast(tokenizer_file=str(demo["tokenizer"]))
    tokenizer.save(tmp_path / "saved")
    auto = AutoTokenizer.from_pretrained(tmp_path / "saved", local_files_only=True)
    for seq in sequences:
        ids = tokenizer.encode(seq)
        assert tokenizer.decode(ids) == seq
        assert direct(seq)["input_ids"] == ids.tolist() == auto(seq)["input_ids"]  # <cls> first, nothing after
        assert tokenizer.decode(tokenizer.encode(seq.lower())) == seq  # soft-masked bases are upper-cased
    assert SubwordTokenizer.load(tmp_path / "saved").spec == tokenizer.spec


def test_mean_bases_per_token_on_the_demo_genome(demo):
    """The figure docs/tokenizer.md quotes (`pytest tests/test_bpe.py -k bases_per_token -s`)."""
    tokenizer = SubwordTokenizer.load(demo["tokenizer"])
    chromosomes = {name: seq.upper() for name, seq in demo["chromosomes"].items()}
    held_out = bases_per_token(tokenizer, tiles(chromosomes["chr2"], 1020, 1020))
    trained = bases_per_token(tokenizer, tiles(chromosomes["chr1"], 1020, 1020))
    print(f"\nBPE, 4096 tokens learnt on demo chr1: {trained:.2f} bases per token on chr1, "
          f"{held_out:.2f} on the held-out chr2 (6-mers: 6.00)")
    assert 3 < held_out <= trained < 10


# --- refused ----------------------------------------------------------------------------------

def test_bad_settings_and_inputs_are_refused_by_name(demo, tmp_path):
    with pytest.raises(GenofmInputError, match="tokenizer.vocab_size 8 is below 11"):
        train_bpe([demo["train"]], vocab_size=8)
    with pytest.raises(GenofmInputError, match="the BPE tokenizer has no region set to learn from"):
        train_bpe([], vocab_size=300)
    empty = write_regions(tmp_path / "empty.parquet", [])
    with pytest.raises(GenofmInputError, match=f"no sequence to learn the BPE tokenizer from in {empty}"):
        train_bpe([empty], vocab_size=300)
    short = write_regions(tmp_path / "short.parquet", [random_dna(100, 3)])
    with pytest.raises(GenofmInputError, match="tokenizer.vocab_size 4096: the training sequences .* give only"):
        train_bpe([short], vocab_size=4096)
    odd = write_regions(tmp_path / "odd.parquet", ["ACGTRACGT"])
    with pytest.raises(GenofmInputError, match="odd.parquet: region 'r0' holds 'R', not one of ACGTN"):
        train_bpe([odd], vocab_size=300)
    with pytest.raises(GenofmInputError, match="not the tokenizer these tokens or weights were made with"):
        SubwordTokenizer.load(demo["tokenizer"], spec={"sha256": "0" * 64})


def dry_run(tmp_path, tokenizer: dict):
    from test_workflow import snakemake, write_config

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["tokenizer"] = tokenizer
    return snakemake(REPO, "-n", "--configfile", str(write_config(tmp_path, config)), check=False)


def test_the_workflow_plans_bpe_and_refuses_bad_tokenizer_settings(tmp_path):
    proc = dry_run(tmp_path, {"type": "bpe", "vocab_size": 512})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "rule train_tokenizer" in out and "results/tokenizer/tokenizer.json" in out
    assert "results/demo/tokens/pretrain_train/tokenizer.json" in out
    for tokenizer, message in [({"type": "bpe", "overlapping": True}, "tokenizer.overlapping: true is for k-mers"),
                               ({"type": "bpe", "train_sets": {"demo": ["nope"]}},
                                "tokenizer.train_sets.demo: genome 'demo' has no region set 'nope'"),
                               ({"type": "bpe", "vocab_size": 8}, "vocab_size")]:
        proc = dry_run(tmp_path, tokenizer)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]


# --- a BPE model through the stages -----------------------------------------------------------

def test_a_bpe_model_pretrains_embeds_scores_and_exports(demo, tmp_path):
    from transformers import AutoTokenizer

    from genofm.embed import embed_regions
    from genofm.hf import export_to_hf
    from genofm.variants import ScoringInputs, ScoringOutputs, score_vcf

    tokenizer = SubwordTokenizer.load(demo["tokenizer"])
    train_set = tokenize_regions(demo["train"], tokenizer, tmp_path / "tokens" / "train")
    valid_set = tokenize_regions(demo["valid"], tokenizer, tmp_path / "tokens" / "valid")
    assert (tmp_path / "tokens/train/tokenizer.json").read_bytes() == demo["tokenizer"].read_bytes()
    assert load_token_set(tmp_path / "tokens/train").tokenizer.spec == tokenizer.spec == valid_set.tokenizer.spec
    assert train_set.tokenizer.decode(train_set.region(3)) == pd.read_parquet(demo["train"])["sequence"][3].upper()

    arch = dict(vocab_size=tokenizer.vocab_size, max_len=64, n_layers=2, d_model=32, n_heads=2, d_ff=64,
                lm_head="esm")
    training = TrainConfig(max_steps=40, batch_size=8, micro_batch_size=4, lr=3e-3, warmup_steps=4, eval_every=20,
                           eval_windows=8, checkpoint_every=20, log_every=10, metrics_every=10, seed=3,
                           rc_augment=True)  # the reverse strand is tokenized afresh
    data = [DataSpec("demo", [str(tmp_path / "tokens/train")], [str(tmp_path / "tokens/valid")])]
    summary = train(ModelConfig(**arch), training, data, tmp_path / "model", tmp_path / "checkpoints")
    metrics = pd.read_csv(tmp_path / "model/metrics.tsv", sep="\t")
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0] - 0.5, metrics
    assert math.isfinite(summary["final_val_loss"])
    assert (tmp_path / "model/tokenizer.json").read_bytes() == demo["tokenizer"].read_bytes()

    model, loaded = load_model_and_tokenizer(tmp_path / "model")
    assert isinstance(loaded, SubwordTokenizer) and loaded.spec == tokenizer.spec

    regions = write_regions(tmp_path / "regions.parquet", tiles(demo["chromosomes"]["chr2"][:20_000], 300, 1000))
    n = embed_regions(tmp_path / "model", regions, tmp_path / "emb.npy", tmp_path / "emb_index.parquet",
                      EmbedConfig(layer=-1, pooling="mean", rc_average=True))
    matrix = np.load(tmp_path / "emb.npy")
    assert n == matrix.shape[0] == 20 and matrix.shape[1] == 32 and np.isfinite(matrix).all()

    reference = demo["chromosomes"]["chr2"][:3000].upper().replace("N", "A")
    fasta = write_fasta(tmp_path / "ref.fa", {"chr2": reference})
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    records = [(1001, reference[1000], other[reference[1000]]), (1501, reference[1500:1504], reference[1500]),
               (2001, reference[2000], reference[2000] + "GATTACA")]  # SNV, deletion, insertion
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr2,length=3000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER"
                   "\tINFO\n" + "".join(f"chr2\t{p}\tv{p}\t{r}\t{a}\t.\tPASS\t.\n" for p, r, a in records))
    out = tmp_path / "scores"
    out.mkdir()
    score_vcf(ScoringInputs(tmp_path / "model", fasta, vcf),
              ScoringOutputs(out / "out.vcf.gz", out / "out.tsv", out / "summary.json"),
              ScoringConfig(window=200, rc_average=True, embedding=True), CallsetConfig())
    table = pd.read_csv(out / "out.tsv", sep="\t")
    assert len(table) == 3 and np.isfinite(table["pll"]).all() and np.isfinite(table["emb_cosine"]).all(), table

    export_to_hf(model, loaded, tmp_path / "hf")  # refuses unless the logits match genofm's
    auto = AutoTokenizer.from_pretrained(tmp_path / "hf", local_files_only=True)
    seq = reference[:400]
    assert auto(seq)["input_ids"] == loaded.encode(seq).tolist()
    _, reimported = load_model_and_tokenizer(tmp_path / "hf")
    assert isinstance(reimported, SubwordTokenizer) and reimported.spec == tokenizer.spec
