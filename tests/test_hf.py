"""Hugging Face checkpoints, offline: a tiny random EsmForMaskedLM with the NT-v2 vocabulary gives
the embeddings and LLRs of direct transformers calls; genofm models export with equal logits.
Its run through the workflow is in test_hf_families.py, beside the other families'."""

from __future__ import annotations

import json

import numpy as np
import pysam
import pytest
import torch

from conftest import write_fasta
from genofm.embed import EmbedConfig, Embedder
from genofm.errors import GenofmInputError
from genofm.hf import export_to_hf, load_hf_checkpoint, tokenizer_of_checkpoint
from genofm.loading import load_model_and_tokenizer
from genofm.model import DNALM, ModelConfig
from genofm.tokenizer import KmerTokenizer
from genofm.variant_scoring import ScoringConfig, VariantScorer
from genofm.vcf import Allele
from tools.tiny_checkpoints import make_nt as make_nt_checkpoint

NT = KmerTokenizer(k=6)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_nt_checkpoint(tmp_path_factory.mktemp("nt_tiny"))


def direct_embeddings(directory, sequences, layer=-1):
    """Nucleotide Transformer's own usage: tokenizer, hidden_states[layer], mean over the mask."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(directory, local_files_only=True).eval()
    batch = tokenizer(sequences, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    mask = batch["attention_mask"].unsqueeze(-1)
    return (out.hidden_states[layer] * mask).sum(1) / mask.sum(1)


def random_seq(n, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


@pytest.mark.parametrize("layer", [-1, 1])
def test_embeddings_equal_nucleotide_transformers_usage(checkpoint, layer):
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    assert tokenizer.k == 6 and model.cfg.max_len == 66
    sequences = [random_seq(n, i) for i, n in enumerate((60, 133, 301, 90))]  # leftover bases: single tokens
    ours = Embedder(model, tokenizer, EmbedConfig(layer=layer)).embed_sequences(sequences)
    torch.testing.assert_close(ours, direct_embeddings(checkpoint, sequences, layer), atol=1e-5, rtol=1e-4)


def test_llr_equals_direct_masked_calls(checkpoint, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    genome = random_seq(2000, 5)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    with pysam.FastaFile(str(fasta)) as handle:
        scorer = VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=False, rc_average=False))
        alt = "A" if genome[1000] != "A" else "C"
        allele = Allele(record=0, chrom="chr1", pos=1000, vcf_id=".", ref=genome[1000], alt=alt, ref_chrom="chr1")
        scorer.score([allele])
    start, end = (int(x) for x in allele.scores["window"].split(":")[1].split("-"))
    window = genome[start - 1:end]
    rel = 1000 - (start - 1)
    hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    hf = AutoModelForMaskedLM.from_pretrained(checkpoint, local_files_only=True).eval()
    ids = hf_tokenizer(window, return_tensors="pt")["input_ids"]
    j = 1 + rel // 6  # <cls> first; the window starts on the 6-mer grid
    token = window[(j - 1) * 6:j * 6]
    alt_token = token[:rel % 6] + alt + token[rel % 6 + 1:]
    ids[0, j] = hf_tokenizer.mask_token_id
    with torch.no_grad():
        logp = hf(input_ids=ids).logits[0, j].log_softmax(-1)
    expected = logp[hf_tokenizer.convert_tokens_to_ids(alt_token)] - logp[hf_tokenizer.convert_tokens_to_ids(token)]
    assert allele.scores["llr"] == pytest.approx(float(expected), abs=1e-5)


def test_checkpoint_problems_are_named(checkpoint, tmp_path):
    pickled = tmp_path / "pickled"
    make_nt_checkpoint(pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(GenofmInputError, match="does not unpickle pytorch_model.bin"):
        load_hf_checkpoint(pickled)
    other = tmp_path / "other_vocab"
    make_nt_checkpoint(other)
    (other / "vocab.txt").write_text("<pad>\n<unk>\nL\nA\nG\n")
    with pytest.raises(GenofmInputError, match="not a k-mer vocabulary"):
        tokenizer_of_checkpoint(other)


def genofm_model(**overrides) -> DNALM:
    torch.manual_seed(1)
    cfg = ModelConfig(**{"vocab_size": NT.vocab_size, "max_len": 40, "n_layers": 2, "d_model": 32, "n_heads": 4,
                         "d_ff": 64, "extra": {"tokenizer": {"k": 6, "overlapping": False}}, **overrides})
    model = DNALM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_export_round_trip_gives_equal_logits_and_ids(tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = genofm_model()
    out = export_to_hf(model, NT, tmp_path / "exported")
    hf = AutoModelForMaskedLM.from_pretrained(out, local_files_only=True).eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    sequences = [random_seq(100, 1), random_seq(61, 2)]
    batch = hf_tokenizer(sequences, return_tensors="pt", padding=True)
    for i, seq in enumerate(sequences):
        ours_ids = NT.encode(seq)
        assert batch["input_ids"][i, :ours_ids.size].tolist() == ours_ids.tolist()
    with torch.no_grad():
        theirs = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ours = model(batch["input_ids"]).logits
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-4, rtol=1e-4)
    # and back: the exported checkpoint embeds as the genofm model does
    imported, tokenizer = load_hf_checkpoint(out)
    seqs = [random_seq(150, 3)]
    torch.testing.assert_close(Embedder(imported, tokenizer, EmbedConfig()).embed_sequences(seqs),
                               Embedder(model, NT, EmbedConfig()).embed_sequences(seqs), atol=1e-4, rtol=1e-4)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["EsmForMaskedLM"]


@pytest.mark.parametrize("overrides, message", [
    ({"ffn": "swiglu"}, "ffn 'swiglu'"),
    ({"position": "alibi"}, "position 'alibi'"),
    ({"lm_head": "linear"}, "lm_head 'linear'"),
    ({"causal": True}, "next-token"),
])
def test_export_refuses_what_esm_cannot_hold(tmp_path, overrides, message):
    with pytest.raises(GenofmInputError, match=message):
        export_to_hf(genofm_model(**overrides), NT, tmp_path / "x")
    assert not (tmp_path / "x").exists()
