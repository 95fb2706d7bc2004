"""Trained-head variant effects: the change of a trained probe's output from the REF to the ALT
window (genofm.head_effects)."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
import torch

from genofm.embed import EmbedConfig, Embedder
from genofm.errors import GenofmInputError
from genofm.finetune import SequenceClassifier
from genofm.finetuned import FinetunedHead
from genofm.head_effects import HeadEffects, head_info_key
from genofm.heads import ProbeHead
from genofm.model import DNALM, ModelConfig
from genofm.sequence import reverse_complement
from genofm.tokenizer import CLS, KmerTokenizer
from genofm.vcf import Allele

TOK = KmerTokenizer(k=1)


def tiny_model(**extra_cfg):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=TOK.vocab_size, max_len=64, n_layers=2, d_model=16, n_heads=2, d_ff=32,
                      extra={"tokenizer": {"k": 1, "overlapping": False}}, **extra_cfg)
    return DNALM(cfg).eval()


def linear_head(objective: str, classes: list[str], width: int, out: int = 1, seed: int = 0) -> ProbeHead:
    rng = np.random.default_rng(seed)
    return ProbeHead(objective, classes, rng.normal(size=16), rng.uniform(0.5, 2, 16), [rng.normal(size=(16, out))],
                     [rng.normal(size=out)], "identity" if objective == "regression" else
                     "logistic" if out == 1 else "softmax", {"region_length_median": width})


@pytest.fixture()
def fasta(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "ref.fa"
    contigs = {"c1": "".join(rng.choice(list("ACGT"), 500)), "short": "ACGTACGTAC"}
    contigs["c1"] = contigs["c1"][:300] + "N" * 40 + contigs["c1"][340:]
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in contigs.items()))
    pysam.faidx(str(path))
    with pysam.FastaFile(str(path)) as handle:
        yield handle, contigs


def allele(pos, ref, alt, chrom="c1"):
    return Allele(0, chrom, pos, ".", ref, alt, ref_chrom=chrom)


def test_effect_is_the_head_output_on_alt_minus_ref(fasta):
    handle, contigs = fasta
    model, cfg = tiny_model(), EmbedConfig(rc_average=True)
    heads = {"activity": linear_head("regression", [], 40), "promoter": linear_head("classification", ["bg", "p"], 40)}
    effects = HeadEffects(heads, model, TOK, handle, cfg)
    seq = contigs["c1"]
    alleles = [allele(100, seq[100], "A" if seq[100] != "A" else "C"),  # a centred window: 80..120
               allele(3, seq[3], "T" if seq[3] != "T" else "G"),  # near the contig start: the window 0..40
               allele(200, seq[200:203], seq[200]),  # a deletion: the ALT window is 2 bases shorter
               allele(320, "N", "A"),  # in a run of N: no score
               allele(5, "A", "C", chrom="short")]  # the contig is shorter than the window: no score
    alleles[3].status = "OK"
    effects.score(alleles)
    embedder = Embedder(model, TOK, cfg)
    for a, start in ((alleles[0], 80), (alleles[1], 0), (alleles[2], 181)):
        ref = seq[start:start + 40]
        rel = a.pos - start
        alt = ref[:rel] + a.alt + ref[rel + len(a.ref):]
        vectors = embedder.embed_sequences([ref, alt]).numpy()
        for task, head in heads.items():
            expected = head.single_output(vectors[1:]) - head.single_output(vectors[:1])
            assert a.scores[f"head_{task}"] == pytest.approx(float(expected[0]), rel=1e-5, abs=1e-6)
    assert not alleles[3].scores and not alleles[4].scores
    # a two-class head reads the log-odds of its second class
    vectors = embedder.embed_sequences([seq[80:120]]).numpy()
    p = heads["promoter"].predict(vectors)[0]
    assert heads["promoter"].single_output(vectors)[0] == pytest.approx(np.log(p[1] / p[0]))
    described = effects.info_descriptions()
    assert described["head_promoter"][0] == head_info_key("promoter") == "GFM_HEAD_PROMOTER"
    assert "log-odds of class 'p'" in described["head_promoter"][1] and "40 bp window" in described["head_promoter"][1]


def test_heads_without_a_single_output_or_on_aligned_models_are_refused(fasta):
    handle, _ = fasta
    three = linear_head("classification", ["a", "b", "c"], 40, out=3)
    with pytest.raises(GenofmInputError, match="probe task 'kinds' has 3 classes: trained-head variant effects take"):
        HeadEffects({"kinds": three}, tiny_model(), TOK, handle, EmbedConfig())
    aligned = tiny_model(aligned_species=["s1"])
    with pytest.raises(GenofmInputError, match="alignment-aware model's heads are not applied to variants"):
        HeadEffects({"x": linear_head("regression", [], 40)}, aligned, TOK, handle, EmbedConfig())


def test_a_finetuned_head_scores_its_own_windows_on_both_strands(fasta):
    """A fine-tune's effect: its output on the ALT window minus on the REF window, each the mean
    of the two strands, computed here with the classifier called directly on token ids."""
    handle, contigs = fasta
    torch.manual_seed(2)
    classifier = SequenceClassifier(tiny_model(), 2).eval()
    meta = {"objective": "classification", "classes": ["bg", "p"], "target": None, "region_length_median": 30}
    finetuned = FinetunedHead(classifier, TOK, 64, meta)
    effects = HeadEffects({}, tiny_model(), TOK, handle, EmbedConfig(), finetuned={"promoter": finetuned})
    seq = contigs["c1"]
    a = allele(100, seq[100], "A" if seq[100] != "A" else "C")
    effects.score([a])

    def log_odds(window: str) -> float:
        both = []
        for s in (window, reverse_complement(window)):
            ids = torch.tensor([[CLS] + TOK.encode(s, add_special_tokens=False).tolist()])
            with torch.no_grad():
                logits = classifier(ids)[0].double()
            both.append(float(logits[1] - logits[0]))
        return sum(both) / 2

    ref = seq[85:115]
    alt = ref[:15] + a.alt + ref[16:]
    assert a.scores["head_promoter_finetuned"] == pytest.approx(log_odds(alt) - log_odds(ref), rel=1e-5, abs=1e-6)
    key, text = effects.info_descriptions()["head_promoter_finetuned"]
    assert key == head_info_key("promoter", finetuned=True) == "GFM_HEAD_PROMOTER_FINETUNED"
    assert "fine-tuned model, both strands" in text and "30 bp window" in text
