"""Hugging Face masked and causal LMs over bases or k-mers (genofm.hf_lm): tiny random
checkpoints of each kind built here (a Llama causal LM over characters, one over 6-mers, a
BERT masked LM over characters), scored and embedded by genofm and compared with direct
transformers calls; a BPE tokenizer and remote code without the opt-in are refused."""

from __future__ import annotations

import json

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
from tools.tiny_checkpoints import CHAR_SPECIALS, make_bert, make_llama, make_mamba

def direct(directory):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    config = json.loads((directory / "config.json").read_text())
    auto = AutoModelForCausalLM if config["architectures"][0].endswith("CausalLM") else AutoModelForMaskedLM
    return (AutoTokenizer.from_pretrained(directory, local_files_only=True),
            auto.from_pretrained(directory, local_files_only=True).eval())


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
        VariantScorer(model, tokenizer, handle, ScoringConfig(embedding=False, rc_average=True,
                                                              window=240)).score(alleles)
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


def test_a_bpe_tokenizer_is_refused_naming_it(tmp_path):
    from tokenizers import Tokenizer, models, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path / "bpe"
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.train_from_iterator([random_seq(500, i) for i in range(20)],
                                  trainers.BpeTrainer(vocab_size=64, special_tokens=CHAR_SPECIALS))
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(directory)
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, architectures=["LlamaForCausalLM"])
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    with pytest.raises(GenofmInputError, match="splits sequences differently from genofm's .*BPE"):
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


def load_model_and_tokenizer_via_pointer(tmp_path, pointer):
    workflow_dir = tmp_path / "results_model"
    workflow_dir.mkdir(exist_ok=True)
    (workflow_dir / "huggingface.json").write_text(json.dumps(pointer))
    return load_model_and_tokenizer(workflow_dir)


@pytest.mark.workflow
@pytest.mark.parametrize("family", ["llama_bases", "llama_6mers", "bert_bases"])
def test_the_demo_workflow_runs_each_family(tmp_path, family):
    """Embedding, a probe and variant scoring through the workflow with a local checkpoint of
    each family; scores and embeddings as the direct calls above give them."""
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from conftest import REPO, copy_workflow
    from genofm.embed import load_embeddings
    from genofm.regions import read_regions

    copy_workflow(tmp_path)
    # contexts that hold a whole 300-base probe region, so that embeddings are one pass
    make = {"llama_bases": lambda d: make_llama(d, k=1, positions=512),
            "llama_6mers": lambda d: make_llama(d, k=6, positions=512),
            "bert_bases": lambda d: make_bert(d, positions=512)}[family]
    checkpoint = make(tmp_path / family)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    demo = config["genomes"]["demo"]
    demo["region_sets"] = {"promoters_vs_background": demo["region_sets"]["promoters_vs_background"]}
    config["models"] = {family: {"huggingface": str(checkpoint)}}
    config["probes"]["promoters"].update(model=family, finetune={"method": "none"})
    config["variants"]["demo_variants"].update(model=family, models=[])
    config["variant_scoring"].update(rc_average=True, window=240)
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "family.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    hf_tokenizer, hf = direct(checkpoint)
    first = hf_tokenizer.cls_token_id if family.startswith("bert") else hf_tokenizer.bos_token_id

    matrix, _ = load_embeddings(tmp_path / f"results/demo/embeddings/{family}/promoters_vs_background.npy",
                                tmp_path / f"results/demo/embeddings/{family}/promoters_vs_background.index.parquet")
    regions = read_regions(tmp_path / "results/demo/regions/promoters_vs_background.parquet")
    for row, seq in zip(matrix[:4], regions["sequence"][:4]):
        ids = torch.tensor([[first] + hf_tokenizer(seq.upper(), add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            expected = hf(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
        torch.testing.assert_close(torch.from_numpy(np.array(row)), expected, atol=1e-4, rtol=1e-3)
    table = pd.read_csv(tmp_path / f"results/demo/variants/{family}/demo_variants.tsv", sep="\t")
    assert len(table) == 530 and (table["status"] == "OK").all()
    score = "llr" if family.startswith("bert") else "lldiff"
    assert table.loc[table["kind"] == "snv", score].notna().all()
    probes = pd.read_csv(tmp_path / "results/probes_summary.tsv", sep="\t")
    assert set(probes["method"]) == {"probe", "kmer4_baseline"} and set(probes["model"]) == {family}
    figures = tmp_path / f"results/demo/variants/{family}/demo_variants"
    assert (figures / "attention.png").exists() and (figures / "findings.tsv").exists()
