"""GPN checkpoints (the `gpn` package's ConvNetForMaskedLM): a tiny random checkpoint built here,
read by genofm, and every output compared with what gpn's own code gives for the same
checkpoint: logits, embeddings and the strand-averaged masked-marginal LLR. Its run through the
workflow is in test_hf_families.py, beside the other families'."""

from __future__ import annotations

import json
import sys

import numpy as np
import pysam
import pytest
import torch

from conftest import write_fasta
from genofm.embed import EmbedConfig, Embedder
from genofm.errors import GenofmInputError
from genofm.hf import checkpoint_pointer, load_pointer
from genofm.loading import load_model_and_tokenizer
from genofm.sequence import reverse_complement
from genofm.variant_scoring import ScoringConfig, VariantScorer
from genofm.vcf import Allele
from tools.tiny_checkpoints import make_gpn as make_gpn_checkpoint

import gpn  # noqa: F401  (a test dependency: quickstart.sh test installs it; missing, these tests fail)


def gpn_own(directory):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from gpn import register_auto_classes

    register_auto_classes("ss")
    return (AutoTokenizer.from_pretrained(directory, local_files_only=True),
            AutoModelForMaskedLM.from_pretrained(directory, local_files_only=True).eval())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_gpn_checkpoint(tmp_path_factory.mktemp("gpn_tiny"))


def random_seq(n, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


@pytest.mark.parametrize("architecture", ["ConvNet", "GPN"])
def test_logits_and_embeddings_equal_gpn(checkpoint, tmp_path, architecture):
    if architecture == "GPN":  # the newer GPNForMaskedLM (convolutional encoder)
        checkpoint = make_gpn_checkpoint(tmp_path / "gpn_new", architecture="GPN")
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    assert tokenizer.k == 1 and model.cfg.max_len == 513
    assert model.cfg.extra["architecture"] == f"{architecture}ForMaskedLM"
    hf_tokenizer, hf = gpn_own(checkpoint)
    seq = random_seq(300, 1).lower()  # soft-masked bases: both sides read them as the base
    with torch.no_grad():
        ours = model(torch.as_tensor(np.array([tokenizer.encode(seq)])))
        theirs = hf(input_ids=torch.tensor([hf_tokenizer(seq)["input_ids"]])).logits[0]  # (L, V_gpn)
        hidden = hf.model(input_ids=torch.tensor([hf_tokenizer(seq)["input_ids"]])).last_hidden_state[0]
    columns = hf_tokenizer("ACGT", add_special_tokens=False)["input_ids"]
    acgt = [tokenizer.token_to_id[b] for b in "ACGT"]
    torch.testing.assert_close(ours.logits[0, 1:, acgt], theirs[:, columns])
    torch.testing.assert_close(ours.last_hidden[0, 1:], hidden)
    # region embeddings: GPN's mean over the sequence, whatever the batch's other lengths
    sequences = [random_seq(n, i) for i, n in enumerate((60, 133, 301, 90))]
    embedded = Embedder(model, tokenizer, EmbedConfig()).embed_sequences(sequences)
    with torch.no_grad():
        expected = torch.stack([hf.model(input_ids=torch.tensor([hf_tokenizer(s)["input_ids"]]))
                                .last_hidden_state[0].mean(0) for s in sequences])
    torch.testing.assert_close(embedded, expected, atol=1e-5, rtol=1e-4)


def gpn_llr(hf_tokenizer, hf, window: str, rel: int, ref: str, alt: str) -> float:
    """gpn's rule (gpn.ss.inference.MLMforVEPModel with gpn.scoring): mask the variant's base,
    logit(ALT) - logit(REF), on the window and on its reverse complement, averaged."""
    from gpn.scoring import log_likelihood_ratio

    scores = []
    for seq, pos, r, a in ((window, rel, ref, alt),
                           (reverse_complement(window), len(window) - 1 - rel, reverse_complement(ref),
                            reverse_complement(alt))):
        masked = seq[:pos] + hf_tokenizer.mask_token + seq[pos + 1:]
        ids = torch.tensor([hf_tokenizer(masked)["input_ids"]])
        assert ids.shape[1] == len(seq)
        with torch.no_grad():
            logits = hf(input_ids=ids).logits[0, pos]
        scores.append(float(log_likelihood_ratio(logits, hf_tokenizer.convert_tokens_to_ids(r.lower()),
                                                 hf_tokenizer.convert_tokens_to_ids(a.lower()))))
    return sum(scores) / 2


def test_variant_llr_equals_gpn_on_the_same_window(checkpoint, tmp_path):
    genome = random_seq(3000, 5)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    hf_tokenizer, hf = gpn_own(checkpoint)
    positions = [40, 700, 1500, 2980]  # near both contig ends too
    alleles = [Allele(record=i, chrom="chr1", pos=p, vcf_id=".", ref=genome[p], alt="A" if genome[p] != "A" else "G",
                      ref_chrom="chr1") for i, p in enumerate(positions)]
    with pysam.FastaFile(str(fasta)) as handle:
        VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=False, rc_average=True)).score(alleles)
    for allele in alleles:
        start, end = (int(x) for x in allele.scores["window"].split(":")[1].split("-"))
        expected = gpn_llr(hf_tokenizer, hf, genome[start - 1:end], allele.pos - (start - 1), allele.ref, allele.alt)
        assert allele.scores["llr"] == pytest.approx(expected, abs=1e-5), allele.pos


def test_gpn_checkpoint_pointer_and_problems(checkpoint, tmp_path, monkeypatch):
    pointer = checkpoint_pointer(checkpoint)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(pointer["files"])
    (tmp_path / "huggingface.json").write_text(json.dumps(pointer))
    assert load_pointer(tmp_path / "huggingface.json") == (checkpoint.resolve(), False)
    model, _ = load_model_and_tokenizer(checkpoint)
    with pytest.raises(GenofmInputError, match="GPN gives its last layer only"):
        Embedder(model, *load_model_and_tokenizer(checkpoint)[1:], EmbedConfig(layer=1)).embed_sequences(["ACGT" * 10])
    bad = make_gpn_checkpoint(tmp_path / "protein")
    tokenizer = json.loads((bad / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"] = {"[PAD]": 0, "[MASK]": 1, "[UNK]": 2, "l": 3, "k": 4, "a": 5, "g": 6}
    (bad / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(GenofmInputError, match="cannot encode A, C, G and T"):
        load_model_and_tokenizer(bad)
    monkeypatch.setitem(sys.modules, "gpn", None)  # gpn not installed: the message says how
    with pytest.raises(GenofmInputError, match="need the gpn package.*pip install --no-deps --ignore-requires-python"):
        load_model_and_tokenizer(checkpoint)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_gpn_takes_peft_adapters(checkpoint, method):
    from genofm.finetune import FinetuneConfig, SequenceClassifier, batch, encode, trainable_parameters, wrap

    model, tokenizer = load_model_and_tokenizer(checkpoint)
    adapted = wrap(SequenceClassifier(model, 2), FinetuneConfig(method=method))
    trainable, total = trainable_parameters(adapted)
    assert 0 < trainable < total  # adapters and the head, not the whole network
    ids = batch(encode([random_seq(50, 1), random_seq(80, 2)], tokenizer, model.cfg.max_len))
    adapted(**ids).sum().backward()  # gradients reach the adapters through GPN's modules
    # trained adapters (random here) see the padded batch as each sequence alone: padding is masked
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            if method in name:
                p.normal_(0, 0.3) if method == "lora" else p.uniform_(0.5, 1.5)
        alone = torch.cat([adapted(**batch(encode([random_seq(n, n)], tokenizer, model.cfg.max_len)))
                           for n in (50, 80)])
        together = adapted(**batch(encode([random_seq(50, 50), random_seq(80, 80)], tokenizer, model.cfg.max_len)))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in adapted.named_parameters()
               if p.requires_grad and method in n)
