"""Hugging Face masked and causal LMs over bases or k-mers (genofm.hf_lm): tiny random
checkpoints of each kind built here (a Llama causal LM over characters, one over 6-mers, a
BERT masked LM over characters, one over BPE tokens), scored and embedded by genofm and
compared with direct transformers calls; a tokenizer that cannot encode DNA and remote code
without the opt-in are refused. One workflow run takes those four, a Nucleotide Transformer and
a GPN checkpoint through every stage, each compared with its own library's computation."""

from __future__ import annotations

import json
import re

import numpy as np
import pysam
import pytest
import torch

from conftest import write_fasta
from genofm.embed import EmbedConfig, Embedder
from genofm.errors import GenofmInputError
from genofm.hf import checkpoint_pointer
from genofm.loading import load_model_and_tokenizer
from genofm.sequence import reverse_complement
from genofm.variant_scoring import ScoringConfig, VariantScorer
from genofm.vcf import Allele
from genofm.subword import SubwordTokenizer
from tools.tiny_checkpoints import make_bert, make_bert_bpe, make_llama, make_mamba

def direct(directory, trust_remote_code=False):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    config = json.loads((directory / "config.json").read_text())
    auto = AutoModelForCausalLM if config["architectures"][0].endswith("CausalLM") else AutoModelForMaskedLM
    return (AutoTokenizer.from_pretrained(directory, local_files_only=True),
            auto.from_pretrained(directory, local_files_only=True, trust_remote_code=trust_remote_code).eval())


def random_seq(n, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


def causal_loglik(hf_tokenizer, hf, seq: str) -> float:
    """log P(sequence | <s>) summed over its tokens, by the checkpoint's own tokenizer and model."""
    ids = torch.tensor([[hf_tokenizer.bos_token_id] + hf_tokenizer(seq, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = hf(input_ids=ids).logits[0, :-1].log_softmax(-1)
    return float(logp.gather(-1, ids[0, 1:, None]).sum())


@pytest.mark.parametrize("family, k", [("llama", 1), ("llama", 6), ("mamba", 1)])
def test_causal_lm_lldiff_and_embeddings_equal_direct_calls(tmp_path, family, k):
    checkpoint = make_llama(tmp_path / f"llama_k{k}", k=k) if family == "llama" else make_mamba(tmp_path / family)
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    assert tokenizer.k == k and model.cfg.causal and model.cfg.max_len == (256 if family == "llama" else 1024)
    hf_tokenizer, hf = direct(checkpoint)
    genome = random_seq(1500, 3)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    alleles = [Allele(record=i, chrom="chr1", pos=p, vcf_id=".", ref=genome[p], alt="A" if genome[p] != "A" else "G",
                      ref_chrom="chr1") for i, p in enumerate((300, 701, 1100))]
    with pysam.FastaFile(str(fasta)) as handle:
        scorer = VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=False, rc_average=True, window=240))
        scorer.score(alleles)
    # Llama's key/value cache of the REF window: each ALT window runs from the variant on (about
    # half a pass); Mamba keeps no cache that can be cut, so its ALT windows run whole
    alt_passes = scorer.passes["lldiff"] - 2 * len(alleles)  # less one REF pass per window and strand
    assert alt_passes == pytest.approx(2 * len(alleles)) if family == "mamba" else alt_passes < 0.6 * 2 * len(alleles)
    for a in alleles:
        start, end = (int(x) for x in a.scores["window"].split(":")[1].split("-"))
        ref = genome[start - 1:end]
        rel = a.pos - (start - 1)
        alt = ref[:rel] + a.alt + ref[rel + 1:]
        expected = np.mean([causal_loglik(hf_tokenizer, hf, orient(alt)) - causal_loglik(hf_tokenizer, hf, orient(ref))
                            for orient in (lambda s: s, reverse_complement)])
        assert a.scores["lldiff"] == pytest.approx(expected, abs=1e-3), a.pos
    sequences = [random_seq(n, i) for i, n in enumerate((60, 133, 90))]
    ours = Embedder(model, tokenizer, EmbedConfig(layer=1)).embed_sequences(sequences)
    for row, seq in zip(ours, sequences):
        ids = torch.tensor([[hf_tokenizer.bos_token_id] + hf_tokenizer(seq, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            expected = hf(input_ids=ids, output_hidden_states=True).hidden_states[1][0].mean(0)
        torch.testing.assert_close(row, expected, atol=1e-5, rtol=1e-4)


def test_masked_lm_over_characters_llr_equals_direct_calls(tmp_path):
    checkpoint = make_bert(tmp_path / "bert")
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    assert tokenizer.k == 1 and not model.cfg.causal
    hf_tokenizer, hf = direct(checkpoint)
    genome = random_seq(1000, 4)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    allele = Allele(record=0, chrom="chr1", pos=500, vcf_id=".", ref=genome[500], alt="A" if genome[500] != "A" else "C",
                    ref_chrom="chr1")
    with pysam.FastaFile(str(fasta)) as handle:
        VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=False, rc_average=False)).score([allele])
    start, end = (int(x) for x in allele.scores["window"].split(":")[1].split("-"))
    window = genome[start - 1:end]
    rel = allele.pos - (start - 1)
    ids = torch.tensor([[hf_tokenizer.cls_token_id] + hf_tokenizer(window, add_special_tokens=False)["input_ids"]])
    ids[0, 1 + rel] = hf_tokenizer.mask_token_id
    with torch.no_grad():
        logp = hf(input_ids=ids).logits[0, 1 + rel].log_softmax(-1)
    expected = logp[hf_tokenizer.convert_tokens_to_ids(allele.alt)] - logp[hf_tokenizer.convert_tokens_to_ids(allele.ref)]
    assert allele.scores["llr"] == pytest.approx(float(expected), abs=1e-5)


def direct_pll(hf_tokenizer, hf, ref: str, alt: str, rel: int, ref_len: int) -> float:
    """PLL(ALT) - PLL(REF) over the tokens covering the variant, written out with the checkpoint's
    own tokenizer (offsets) and model: widen [s, e) base by base until both ends are token
    boundaries of both windows."""
    def tokenize(seq):
        enc = hf_tokenizer(seq, add_special_tokens=False, return_offsets_mapping=True)
        return enc["input_ids"], enc["offset_mapping"]

    (ref_ids, ref_spans), (alt_ids, alt_spans) = tokenize(ref), tokenize(alt)
    shift = len(alt) - len(ref)
    s = rel
    while s not in {a for a, _ in ref_spans} or s not in {a for a, _ in alt_spans}:
        s -= 1
    e = rel + ref_len
    while e not in {b for _, b in ref_spans} or e + shift not in {b for _, b in alt_spans}:
        e += 1

    def pll(ids, spans, end):
        total = 0.0
        for i, (a, b) in enumerate(spans):
            if a >= s and b <= end:
                masked = torch.tensor([[hf_tokenizer.cls_token_id] + ids])
                masked[0, 1 + i] = hf_tokenizer.mask_token_id
                with torch.no_grad():
                    total += float(hf(input_ids=masked).logits[0, 1 + i].log_softmax(-1)[ids[i]])
        return total

    return pll(alt_ids, alt_spans, e + shift) - pll(ref_ids, ref_spans, e)


def test_bpe_masked_lm_pll_and_embeddings_equal_direct_calls(tmp_path):
    """DNABERT-2's layout: a BERT over BPE tokens trained here; SNVs and indels get the PLL
    difference over the tokens covering them, on both strands, as a direct computation gives it."""
    genome = random_seq(3000, 5)
    checkpoint = make_bert_bpe(tmp_path / "bpe", [genome[i:i + 500] for i in range(0, 3000, 250)])
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    assert isinstance(tokenizer, SubwordTokenizer) and tokenizer.kind == "BPE" and not model.cfg.causal
    hf_tokenizer, hf = direct(checkpoint)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    edits = [(400, genome[400], "A" if genome[400] != "A" else "G"), (1001, genome[1001], "T" if genome[1001] != "T" else "C"),
             (1500, genome[1500:1504], genome[1500]), (2100, genome[2100], genome[2100] + "GATTACA")]
    alleles = [Allele(record=i, chrom="chr1", pos=p, vcf_id=".", ref=r, alt=a, ref_chrom="chr1")
               for i, (p, r, a) in enumerate(edits)]
    with pysam.FastaFile(str(fasta)) as handle:
        scorer = VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=True, rc_average=True, window=200))
        assert scorer.score_names == ["pll", "emb_cosine", "emb_l2"]
        scorer.score(alleles)
    for a in alleles:
        start, end = (int(x) for x in a.scores["window"].split(":")[1].split("-"))
        ref = genome[start - 1:end]
        rel = a.pos - (start - 1)
        alt = ref[:rel] + a.alt + ref[rel + len(a.ref):]
        expected = np.mean([direct_pll(hf_tokenizer, hf, ref, alt, rel, len(a.ref)),
                            direct_pll(hf_tokenizer, hf, reverse_complement(ref), reverse_complement(alt),
                                       len(ref) - rel - len(a.ref), len(a.ref))])
        assert a.scores["pll"] == pytest.approx(expected, abs=1e-4), (a.pos, a.ref, a.alt)
        assert a.scores["emb_l2"] > 0
    sequences = [random_seq(n, i) for i, n in enumerate((60, 133, 90))]
    ours = Embedder(model, tokenizer, EmbedConfig(layer=1)).embed_sequences(sequences)
    for row, seq in zip(ours, sequences):
        ids = torch.tensor([[hf_tokenizer.cls_token_id] + hf_tokenizer(seq, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            expected = hf(input_ids=ids, output_hidden_states=True).hidden_states[1][0].mean(0)
        torch.testing.assert_close(row, expected, atol=1e-5, rtol=1e-4)


def test_a_subword_tokenizer_is_refused_where_it_cannot_encode_dna(tmp_path):
    from tokenizers import Tokenizer, models, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    for unk in ("[UNK]", None):  # A read as <unk>, or dropped without a trace
        directory = tmp_path / f"text_bpe_{'unk' if unk else 'no_unk'}"
        tokenizer = Tokenizer(models.BPE(unk_token=unk))
        tokenizer.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20,
                                      trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]", "[MASK]", "[CLS]"]))
        PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", mask_token="[MASK]",
                                cls_token="[CLS]").save_pretrained(directory)
        config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=16, intermediate_size=32,
                            num_hidden_layers=1, num_attention_heads=2, architectures=["BertForMaskedLM"])
        BertForMaskedLM(config).save_pretrained(directory, safe_serialization=True)
        with pytest.raises(GenofmInputError, match=f"{re.escape(str(directory))}.*(has no token for 'A'|leaves base 1 \\('A'\\))"):
            load_model_and_tokenizer(directory)


def test_remote_code_runs_only_when_the_config_opts_in(tmp_path):
    checkpoint = make_llama(tmp_path / "remote")
    (checkpoint / "modeling_tiny.py").write_text(
        "from transformers import LlamaConfig, LlamaForCausalLM\n\n\n"
        "class TinyConfig(LlamaConfig):\n    model_type = 'tiny_remote'\n\n\n"
        "class TinyForCausalLM(LlamaForCausalLM):\n    config_class = TinyConfig\n")
    config = json.loads((checkpoint / "config.json").read_text())
    config.update(model_type="tiny_remote", architectures=["TinyForCausalLM"],
                  auto_map={"AutoConfig": "modeling_tiny.TinyConfig", "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"})
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(GenofmInputError, match="runs its own Python code.*trust_remote_code: true"):
        load_model_and_tokenizer(checkpoint)
    with pytest.raises(GenofmInputError, match="runs its own Python code"):
        checkpoint_pointer(checkpoint)  # the import rule stops too
    pointer = checkpoint_pointer(checkpoint, trust_remote_code=True)
    assert pointer["trust_remote_code"] and "modeling_tiny.py" in pointer["files"]  # the code is vouched for
    model, tokenizer = load_model_and_tokenizer_via_pointer(tmp_path, pointer)
    assert model.cfg.causal and tokenizer.k == 1
    (checkpoint / "modeling_tiny.py").write_text("raise SystemExit('changed code')\n")
    with pytest.raises(GenofmInputError, match="modeling_tiny.py changed since it was imported"):
        load_model_and_tokenizer_via_pointer(tmp_path, pointer)


def test_dnabert2_shaped_remote_code_without_hidden_states(tmp_path):
    """DNABERT-2's layout: BPE tokens, its own modeling code (opted in), and an LM whose output
    holds no hidden states: embeddings come from its backbone's last layer, and equal it."""
    checkpoint = make_bert_bpe(tmp_path / "dnabert2", [random_seq(500, i) for i in range(10)])
    (checkpoint / "bert_layers.py").write_text(
        "from transformers import BertConfig, BertForMaskedLM\n"
        "from transformers.modeling_outputs import MaskedLMOutput\n\n\n"
        "class TinyBertConfig(BertConfig):\n    model_type = 'tiny_dnabert2'\n\n\n"
        "class TinyBertForMaskedLM(BertForMaskedLM):\n    config_class = TinyBertConfig\n\n"
        "    def forward(self, input_ids=None, attention_mask=None, **kwargs):\n"
        "        logits = super().forward(input_ids=input_ids, attention_mask=attention_mask).logits\n"
        "        return MaskedLMOutput(logits=logits, hidden_states=None)\n")
    config = json.loads((checkpoint / "config.json").read_text())
    config.update(model_type="tiny_dnabert2", auto_map={"AutoConfig": "bert_layers.TinyBertConfig",
                                                        "AutoModelForMaskedLM": "bert_layers.TinyBertForMaskedLM"})
    (checkpoint / "config.json").write_text(json.dumps(config))
    pointer = checkpoint_pointer(checkpoint, trust_remote_code=True)
    model, tokenizer = load_model_and_tokenizer_via_pointer(tmp_path, pointer)
    assert isinstance(tokenizer, SubwordTokenizer)
    hf_tokenizer, hf = direct(checkpoint, trust_remote_code=True)
    seq = random_seq(120, 7)
    ours = Embedder(model, tokenizer, EmbedConfig(layer=-1)).embed_sequences([seq])[0]
    ids = torch.tensor([[hf_tokenizer.cls_token_id] + hf_tokenizer(seq, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = hf.bert(input_ids=ids).last_hidden_state[0].mean(0)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(GenofmInputError, match="returns no hidden states but the last layer's; set embeddings.layer"):
        Embedder(model, tokenizer, EmbedConfig(layer=1)).embed_sequences([seq])
    genome = random_seq(600, 8)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    allele = Allele(record=0, chrom="chr1", pos=300, vcf_id=".", ref=genome[300:302], alt="A", ref_chrom="chr1")
    with pysam.FastaFile(str(fasta)) as handle:
        VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=False, rc_average=False,
                                                              window=150)).score([allele])
    start, end = (int(x) for x in allele.scores["window"].split(":")[1].split("-"))
    ref = genome[start - 1:end]
    rel = allele.pos - (start - 1)
    alt = ref[:rel] + "A" + ref[rel + 2:]
    assert allele.scores["pll"] == pytest.approx(direct_pll(hf_tokenizer, hf, ref, alt, rel, 2), abs=1e-4)


def load_model_and_tokenizer_via_pointer(tmp_path, pointer):
    workflow_dir = tmp_path / "results_model"
    workflow_dir.mkdir(exist_ok=True)
    (workflow_dir / "huggingface.json").write_text(json.dumps(pointer))
    return load_model_and_tokenizer(workflow_dir)


FAMILIES = ("llama_bases", "llama_6mers", "bert_bases", "bert_bpe")


@pytest.fixture(scope="module")
def families_run(tmp_path_factory):
    """One workflow run over a local checkpoint of each family: the four above, a Nucleotide
    Transformer (ESM, 6-mers) and a GPN model, each with a probe task, a scoring job and its
    place in the call set's comparison; the BPE, NT and GPN models also fine-tuned (IA3), as
    the demo does. Returns the run's directory and the checkpoints by model name."""
    import subprocess
    import sys

    import yaml

    from conftest import copy_workflow, imported_models_demo_config
    from tools.tiny_checkpoints import make_gpn, make_nt

    workdir = copy_workflow(tmp_path_factory.mktemp("families"))
    # contexts that hold a whole 300-base probe region, so that embeddings are one pass
    make = {"llama_bases": lambda d: make_llama(d, k=1, positions=512),
            "llama_6mers": lambda d: make_llama(d, k=6, positions=512),
            "bert_bases": lambda d: make_bert(d, positions=512),
            "bert_bpe": lambda d: make_bert_bpe(d, demo_genome_pieces()),
            "nt_tiny": lambda d: make_nt(d, max_positions=130),
            "gpn_tiny": make_gpn}
    checkpoints = {name: build(workdir / name) for name, build in make.items()}
    ia3 = {"method": "ia3", "epochs": 1}
    config = imported_models_demo_config({name: {"huggingface": str(c)} for name, c in checkpoints.items()},
                                         {"bert_bpe": ia3, "nt_tiny": ia3, "gpn_tiny": ia3})
    config["variant_scoring"].update(rc_average=True, window=240)
    (workdir / "families.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "families.yaml"],
                          cwd=workdir, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir, checkpoints


@pytest.mark.workflow
def test_the_demo_workflow_runs_each_family(families_run):
    """Embedding, a probe and variant scoring through the workflow with a local checkpoint of
    each family, all in one run; scores and embeddings as the direct calls above give them; the
    six models compared on the call set."""
    import pandas as pd

    from conftest import scored_in_regions
    from genofm.embed import load_embeddings
    from genofm.regions import read_regions

    workdir, checkpoints = families_run
    regions = read_regions(workdir / "results/demo/regions/promoters_vs_background.parquet")
    probes = pd.read_csv(workdir / "results/probes_summary.tsv", sep="\t")
    for family in FAMILIES:
        checkpoint = checkpoints[family]
        hf_tokenizer, hf = direct(checkpoint)
        first = hf_tokenizer.cls_token_id if family.startswith("bert") else hf_tokenizer.bos_token_id
        embeddings = workdir / f"results/demo/embeddings/{family}/promoters_vs_background"
        matrix, _ = load_embeddings(f"{embeddings}.npy", f"{embeddings}.index.parquet")
        for row, seq in zip(matrix[:4], regions["sequence"][:4]):
            ids = torch.tensor([[first] + hf_tokenizer(seq.upper(), add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                expected = hf(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
            torch.testing.assert_close(torch.from_numpy(np.array(row)), expected, atol=1e-4, rtol=1e-3)
        table = pd.read_csv(workdir / f"results/demo/variants/{family}/demo_variants.tsv", sep="\t")
        assert scored_in_regions(table), family
        score = {"bert_bases": "llr", "bert_bpe": "pll"}.get(family, "lldiff")
        table = table[table["status"] == "OK"]
        scored = table if family == "bert_bpe" else table[table["kind"] == "snv"]  # PLL scores indels too
        assert scored[score].notna().all(), family
        finetuned = {"finetune_ia3"} if family == "bert_bpe" else set()
        assert set(probes.loc[probes["model"] == family, "method"]) == {"probe", "kmer4_baseline"} | finetuned
        figures = workdir / f"results/demo/variants/{family}/demo_variants"
        assert (figures / "attention.png").exists() and (figures / "findings.tsv").exists()
    metrics = json.loads((workdir / "results/demo/finetune/bert_bpe/promoters_bert_bpe/metrics.json").read_text())
    assert "finetune_ia3" in metrics["results"]
    pairs = pd.read_csv(workdir / "results/demo/comparisons/demo_variants/class_pairs.tsv", sep="\t")
    assert set(pairs["model"]) == set(checkpoints)  # the six compared


@pytest.mark.workflow
def test_workflow_with_a_local_nt_checkpoint_equals_direct_transformers_calls(families_run):
    """The families run's Nucleotide Transformer checkpoint (no network): embeddings, a probe, IA3
    fine-tuning and variant scoring, compared against direct transformers calls."""
    import pandas as pd
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from conftest import scored_in_regions
    from genofm.embed import load_embeddings
    from genofm.regions import read_regions
    from test_hf import direct_embeddings

    workdir, checkpoints = families_run
    checkpoint = checkpoints["nt_tiny"]
    assert not (workdir / "results/models/nt_tiny/model.safetensors").exists()  # nothing was pretrained
    pointer = json.loads((workdir / "results/models/nt_tiny/huggingface.json").read_text())
    assert pointer["path"] == str(checkpoint.resolve())

    matrix, index = load_embeddings(workdir / "results/demo/embeddings/nt_tiny/promoters_vs_background.npy",
                                    workdir / "results/demo/embeddings/nt_tiny/promoters_vs_background.index.parquet")
    regions = read_regions(workdir / "results/demo/regions/promoters_vs_background.parquet")
    first = list(regions["sequence"][:12])
    torch.testing.assert_close(torch.from_numpy(np.array(matrix[:12])), direct_embeddings(checkpoint, first),
                               atol=1e-5, rtol=1e-4)

    table = pd.read_csv(workdir / "results/demo/variants/nt_tiny/demo_variants.tsv", sep="\t")
    assert scored_in_regions(table)
    hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    hf = AutoModelForMaskedLM.from_pretrained(checkpoint, local_files_only=True).eval()
    with pysam.FastaFile(str(workdir / "resources/demo/genome.fa.gz")) as fasta:
        for row in table[(table["kind"] == "snv") & (table["status"] == "OK")].head(5).itertuples():
            contig, span = row.window.split(":")
            start, end = (int(x) for x in span.split("-"))
            window = fasta.fetch(contig, start - 1, end).upper()
            rel = row.pos - start  # 0-based offset of the variant in the window
            ids = hf_tokenizer(window, return_tensors="pt")["input_ids"]
            j = 1 + rel // 6
            token = window[(j - 1) * 6:j * 6]
            alt = token[:rel % 6] + row.alt + token[rel % 6 + 1:]
            ids[0, j] = hf_tokenizer.mask_token_id
            with torch.no_grad():
                logp = hf(input_ids=ids).logits[0, j].log_softmax(-1)
            expected = logp[hf_tokenizer.convert_tokens_to_ids(alt)] - logp[hf_tokenizer.convert_tokens_to_ids(token)]
            assert row.llr_fwd == pytest.approx(float(expected), abs=1e-4)
    metrics = json.loads((workdir / "results/demo/finetune/nt_tiny/promoters_nt_tiny/metrics.json").read_text())
    assert "finetune_ia3" in metrics["results"]


@pytest.mark.workflow
def test_workflow_with_a_gpn_checkpoint_equals_gpn(families_run):
    """The families run's GPN checkpoint: embeddings, a probe, IA3 fine-tuning and variant
    scoring, compared against gpn's own code."""
    import pandas as pd

    from conftest import scored_in_regions
    from genofm.embed import load_embeddings
    from genofm.regions import read_regions
    from test_gpn import gpn_llr, gpn_own

    workdir, checkpoints = families_run
    checkpoint = checkpoints["gpn_tiny"]
    hf_tokenizer, hf = gpn_own(checkpoint)

    matrix, _ = load_embeddings(workdir / "results/demo/embeddings/gpn_tiny/promoters_vs_background.npy",
                                workdir / "results/demo/embeddings/gpn_tiny/promoters_vs_background.index.parquet")
    regions = read_regions(workdir / "results/demo/regions/promoters_vs_background.parquet")
    with torch.no_grad():
        expected = torch.stack([hf.model(input_ids=torch.tensor([hf_tokenizer(s)["input_ids"]]))
                                .last_hidden_state[0].mean(0) for s in regions["sequence"][:8]])
    torch.testing.assert_close(torch.from_numpy(np.array(matrix[:8])), expected, atol=1e-5, rtol=1e-4)

    table = pd.read_csv(workdir / "results/demo/variants/gpn_tiny/demo_variants.tsv", sep="\t")
    assert scored_in_regions(table)
    with pysam.FastaFile(str(workdir / "resources/demo/genome.fa.gz")) as fasta:
        for row in table[(table["kind"] == "snv") & (table["status"] == "OK")].head(5).itertuples():
            contig, span = row.window.split(":")
            start, end = (int(x) for x in span.split("-"))
            window = fasta.fetch(contig, start - 1, end).upper()
            assert row.llr == pytest.approx(gpn_llr(hf_tokenizer, hf, window, row.pos - start, row.ref, row.alt),
                                            abs=1e-4)
    metrics = json.loads((workdir / "results/demo/finetune/gpn_tiny/promoters_gpn_tiny/metrics.json").read_text())
    assert "finetune_ia3" in metrics["results"]
    figures = workdir / "results/demo/variants/gpn_tiny/demo_variants"
    assert (figures / "ism.png").exists() and (figures / "attention.png").exists()  # "no attention layer"


def demo_genome_pieces(size: int = 1000) -> list[str]:
    """The demo genome in pieces, to train a BPE tokenizer on."""
    from conftest import REPO

    with pysam.FastxFile(str(REPO / "config/demo/genome.fa.gz")) as fasta:
        return [entry.sequence.upper()[i:i + size] for entry in fasta for i in range(0, len(entry.sequence), size)]


@pytest.mark.parametrize("family", ["llama", "mamba", "bert_bpe"])
@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_mapped_models_take_peft_adapters(tmp_path, family, method):
    """Fine-tuning adapts every linear layer of the backbone, whatever the family calls them."""
    from genofm.finetune import FinetuneConfig, SequenceClassifier, batch, encode, trainable_parameters, wrap

    make = {"llama": make_llama, "mamba": make_mamba,
            "bert_bpe": lambda d: make_bert_bpe(d, [random_seq(500, i) for i in range(10)])}[family]
    model, tokenizer = load_model_and_tokenizer(make(tmp_path / family))
    adapted = wrap(SequenceClassifier(model, 2), FinetuneConfig(method=method))
    trainable, total = trainable_parameters(adapted)
    assert 0 < trainable < total
    ids = batch(encode([random_seq(50, 1), random_seq(80, 2)], tokenizer, model.cfg.max_len))
    adapted(**ids).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in adapted.named_parameters()
               if p.requires_grad and method in n)
