"""Zero-shot variant scoring: LLR against direct model calls, shared passes against the naive
scorer, statuses, the annotated VCF (read back by bcftools), bad inputs, real chr20 indels."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from conftest import require_tool, write_fasta
from genofm.embed import EmbedConfig, Embedder
from genofm.errors import GenofmInputError
from genofm.model import DNALM, ModelConfig
from genofm.sequence import reverse_complement
from genofm.tokenizer import CLS, MASK, KmerTokenizer
from genofm.variant_report import (class_pair_aurocs, figure_region, ism_matrix, ism_score, read_scores,
                                   saturation_alleles, top_variants)
from genofm.variant_scoring import ScoringConfig, VariantScorer
from genofm.variants import CallsetConfig, ScoringInputs, ScoringOutputs, score_vcf
from genofm.vcf import Allele, contig_resolver

HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=3000>
##contig=<ID=chr2,length=1500>
##INFO=<ID=CLASS,Number=1,Type=String,Description="class">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""


def tiny_model(k=3, max_len=48, causal=False, seed=0) -> DNALM:
    torch.manual_seed(seed)
    tok = KmerTokenizer(k=k)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=max_len, n_layers=2, d_model=32, n_heads=4, d_ff=64,
                      causal=causal, extra={"tokenizer": {"k": k, "overlapping": False}})
    model = DNALM(cfg)
    with torch.no_grad():  # larger weights than the init, so predictions differ between tokens
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model.eval()


def random_genome(seed=1) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    return {"chr1": "".join(rng.choice(list("ACGT"), 3000)), "chr2": "".join(rng.choice(list("ACGT"), 1500))}


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    seqs = random_genome()
    seqs["chr2"] = seqs["chr2"][:700] + "N" * 300 + seqs["chr2"][1000:]  # a gap
    write_fasta(path, seqs)
    return path, seqs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    tiny_model().save_pretrained(out)
    return out


def snv_at(seqs, pos, contig="chr1") -> Allele:
    ref = seqs[contig][pos]
    return Allele(record=0, chrom=contig, pos=pos, vcf_id=".", ref=ref, alt="A" if ref != "A" else "C",
                  ref_chrom=contig)


def scorer_for(model, fasta, **cfg):
    return VariantScorer(model, KmerTokenizer.from_spec(model.cfg.extra["tokenizer"]), fasta, ScoringConfig(**cfg))


def direct_llr(model, tok, window: str, rel: int, alt: str) -> float:
    """log P(alt token) - log P(ref token) with the variant's token masked, by hand."""
    ids = tok.encode(window, add_special_tokens=False)
    j = rel // tok.k  # an N-free window: tokens are the k-mers from its start
    token = window[j * tok.k:(j + 1) * tok.k]
    alt_token = token[:rel % tok.k] + alt + token[rel % tok.k + 1:]
    masked = torch.tensor([[CLS, *ids]])
    masked[0, 1 + j] = MASK
    with torch.no_grad():
        logp = model(masked).logits[0, 1 + j].log_softmax(-1)
    return float(logp[tok.token_to_id[alt_token]] - logp[tok.token_to_id[token]])


def test_llr_equals_a_direct_masked_pass_on_both_strands(genome):
    path, seqs = genome
    model = tiny_model()
    tok = KmerTokenizer(k=3)
    with pysam.FastaFile(str(path)) as fasta:
        scorer = scorer_for(model, fasta, rc_average=True, embedding=False)
        a = snv_at(seqs, 1234)
        scorer.score([a])
    start, end = (int(x) - (i == 0) for i, x in enumerate(a.scores["window"].split(":")[1].split("-")))
    assert end - start == 47 * 3 and start % 3 == 0 and start < a.pos < end  # the whole context, on the grid
    assert abs((a.pos - start) // 3 - 47 // 2) <= 1  # the variant's token is central
    window = seqs["chr1"][start:end]
    fwd = direct_llr(model, tok, window, a.pos - start, a.alt)
    rev = direct_llr(model, tok, reverse_complement(window), end - 1 - a.pos, reverse_complement(a.alt))
    assert a.scores["llr_fwd"] == pytest.approx(fwd, abs=1e-5)
    assert a.scores["llr_rev"] == pytest.approx(rev, abs=1e-5)
    assert a.scores["llr"] == pytest.approx((fwd + rev) / 2, abs=1e-5)
    assert abs(fwd) > 1e-3  # the test model has opinions


@pytest.mark.parametrize("k", [1, 3, 6])
def test_shared_passes_equal_the_naive_scorer(genome, k):
    path, _ = genome
    model = tiny_model(k=k, max_len=40)
    with pysam.FastaFile(str(path)) as fasta:
        shared = scorer_for(model, fasta, embedding=False)
        naive = VariantScorer(model, shared.tokenizer, fasta, shared.cfg, share_passes=False)
        alleles = saturation_alleles(fasta, "chr1", 600, 690)
        copies = saturation_alleles(fasta, "chr1", 600, 690)
        shared.score(alleles)
        naive.score(copies)
    llr = np.array([a.scores["llr"] for a in alleles])
    assert np.allclose(llr, [a.scores["llr"] for a in copies], atol=1e-4)
    assert naive.passes["llr"] == 2 * len(alleles)  # one per variant and strand
    assert shared.passes["llr"] <= 2 * np.ceil(90 / k) + 2  # one per token and strand
    assert len(np.unique(llr.round(6))) > len(llr) // 2


def test_mnv_inside_one_token_gets_an_llr_and_across_tokens_does_not(genome):
    path, seqs = genome
    with pysam.FastaFile(str(path)) as fasta:
        scorer = scorer_for(tiny_model(), fasta, embedding=False, rc_average=False)
        inside = Allele(record=0, chrom="chr1", pos=300, vcf_id=".", ref=seqs["chr1"][300:302], alt="".join(
            "A" if b != "A" else "C" for b in seqs["chr1"][300:302]), ref_chrom="chr1")  # 300 % 3 == 0
        across = Allele(record=1, chrom="chr1", pos=302, vcf_id=".", ref=seqs["chr1"][302:304], alt="".join(
            "A" if b != "A" else "C" for b in seqs["chr1"][302:304]), ref_chrom="chr1")
        scorer.score([inside, across])
    assert "llr" in inside.scores and "llr" not in across.scores


def test_embedding_distance_of_an_indel_equals_direct_embeddings(genome):
    path, seqs = genome
    model = tiny_model()
    tok = KmerTokenizer(k=3)
    with pysam.FastaFile(str(path)) as fasta:
        scorer = scorer_for(model, fasta, llr=False, rc_average=False)
        a = Allele(record=0, chrom="chr1", pos=1500, vcf_id=".", ref=seqs["chr1"][1500:1504], alt=seqs["chr1"][1500],
                   ref_chrom="chr1")
        scorer.score([a])
    start, end = a.scores["window"].split(":")[1].split("-")
    window = seqs["chr1"][int(start) - 1:int(end)]
    rel = 1500 - (int(start) - 1)
    embedder = Embedder(model, tok, EmbedConfig())
    ref, alt = embedder.embed_sequences([window, window[:rel] + a.alt + window[rel + 4:]])
    assert a.scores["emb_l2"] == pytest.approx(float((ref - alt).norm()), rel=1e-4)
    assert a.scores["emb_cosine"] == pytest.approx(1 - float(torch.cosine_similarity(ref, alt, dim=0)), abs=1e-5)
    assert a.scores["emb_cosine"] > 0


def test_next_token_model_scores_the_loglik_difference(genome):
    path, seqs = genome
    model = tiny_model(causal=True)
    tok = KmerTokenizer(k=3)
    with pysam.FastaFile(str(path)) as fasta:
        scorer = scorer_for(model, fasta, embedding=False, rc_average=False)
        assert scorer.score_names == ["lldiff"]
        a = snv_at(seqs, 900)
        scorer.score([a])
    start, end = (int(x) for x in a.scores["window"].split(":")[1].split("-"))
    window = seqs["chr1"][start - 1:end]

    def loglik(seq):
        ids = torch.from_numpy(tok.encode(seq))[None]
        with torch.no_grad():
            logp = model(ids).logits[0, :-1].log_softmax(-1)
        return float(logp.gather(-1, ids[0, 1:, None]).sum())

    rel = 900 - (start - 1)
    expected = loglik(window[:rel] + a.alt + window[rel + 1:]) - loglik(window)
    assert a.scores["lldiff"] == pytest.approx(expected, abs=1e-4)


def test_influence_is_the_loglik_change_of_the_following_bases_on_the_stronger_strand(genome):
    """1-mer next-token model: the influence against direct per-base log-likelihoods of the
    REF and ALT windows, read forward (bases after the allele) and on the reverse strand
    (bases before it), for an SNV, a deletion, an insertion and an SNV whose window is cut."""
    path, seqs = genome
    model = tiny_model(k=1, max_len=64, causal=True, seed=3)
    tok = KmerTokenizer(k=1)

    def base_logp(seq):  # entry i: log P(base i | bases before it)
        ids = torch.from_numpy(tok.encode(seq))[None]
        with torch.no_grad():
            logp = model(ids).logits[0, :-1].double().log_softmax(-1)
        return logp.gather(-1, ids[0, 1:, None])[:, 0].numpy()

    chr1 = seqs["chr1"]
    alleles = [snv_at(seqs, 900),
               Allele(record=1, chrom="chr1", pos=1200, vcf_id=".", ref=chr1[1200:1203], alt=chr1[1200],
                      ref_chrom="chr1"),
               Allele(record=2, chrom="chr1", pos=1500, vcf_id=".", ref=chr1[1500], alt=chr1[1500] + "GTT",
                      ref_chrom="chr1"),
               snv_at(seqs, 2995)]  # 4 bases follow on the forward strand
    with pysam.FastaFile(str(path)) as fasta:
        scorer = scorer_for(model, fasta, embedding=False, influence_bases=10)
        assert scorer.score_names == ["lldiff", "influence"]
        scorer.score(alleles)
        assert scorer_for(model, fasta, embedding=False, influence_bases=0).score_names == ["lldiff"]
        assert scorer_for(tiny_model(k=3, causal=True), fasta, embedding=False).score_names == ["lldiff"]
    for a in alleles:
        start, end = (int(x) for x in a.scores["window"].split(":")[1].split("-"))
        ref_window = chr1[start - 1:end]
        rel = a.pos - (start - 1)
        alt_window = ref_window[:rel] + a.alt + ref_window[rel + len(a.ref):]
        forward_ref, forward_alt = base_logp(ref_window), base_logp(alt_window)
        n_fwd = min(10, len(ref_window) - rel - len(a.ref))
        forward = (forward_alt[rel + len(a.alt):][:n_fwd].sum() - forward_ref[rel + len(a.ref):][:n_fwd].sum())
        # reverse strand: the bases before the allele, nearest first, are the last ones read
        reverse_ref, reverse_alt = base_logp(reverse_complement(ref_window)), base_logp(reverse_complement(alt_window))
        n_rev = min(10, rel)
        reverse = (reverse_alt[len(alt_window) - rel:][:n_rev].sum()
                   - reverse_ref[len(ref_window) - rel:][:n_rev].sum())
        assert a.scores["influence"] == pytest.approx(min(forward, reverse), abs=1e-6)
        whole = ((forward_alt.sum() - forward_ref.sum()) + (reverse_alt.sum() - reverse_ref.sum())) / 2
        assert a.scores["lldiff"] == pytest.approx(whole, abs=1e-4)
    assert alleles[3].status == "NEAR_CONTIG_END"
    assert len({round(a.scores["influence"], 6) for a in alleles}) == 4  # not a constant


@pytest.mark.parametrize("k, mixer", [(1, "conv"), (1, "attention"), (3, "attention")])
def test_next_token_alt_windows_run_from_their_first_changed_token(genome, k, mixer):
    """genofm's own next-token models run each ALT window only from its first token that differs
    from the REF window's, on the REF window's hidden states: the same lldiff and influence as
    running it whole (the naive scorer), for SNVs, indels, several alleles of one window and
    windows cut at a contig end, in fewer passes; and the embedding distances from the output
    states of those passes, as the embedder gives them."""
    path, seqs = genome
    torch.manual_seed(5)
    tok = KmerTokenizer(k=k)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=64, n_layers=2, d_model=32, n_heads=4, d_ff=64, causal=True,
                      mixer=mixer, conv_kernel=5, extra={"tokenizer": {"k": k, "overlapping": False}})
    model = DNALM(cfg).eval()
    chr1 = seqs["chr1"]
    alleles = [snv_at(seqs, pos) for pos in (3, 400, 900, 2000, 2996)]
    alleles += [Allele(record=0, chrom="chr1", pos=900, vcf_id=".", ref=chr1[900], alt="G" if chr1[900] != "G" else "T",
                       ref_chrom="chr1"),  # a second ALT at the same position: the same REF window
                Allele(record=1, chrom="chr1", pos=1200, vcf_id=".", ref=chr1[1200:1204], alt=chr1[1200],
                       ref_chrom="chr1"),
                Allele(record=2, chrom="chr1", pos=1500, vcf_id=".", ref=chr1[1500], alt=chr1[1500] + "GTTCA",
                       ref_chrom="chr1")]
    twins = [Allele(**{f: getattr(a, f) for f in ("record", "chrom", "pos", "vcf_id", "ref", "alt", "ref_chrom")})
             for a in alleles]
    with pysam.FastaFile(str(path)) as fasta:
        fast = scorer_for(model, fasta, influence_bases=10, batch_size=3)
        naive = VariantScorer(model, tok, fasta, ScoringConfig(influence_bases=10, batch_size=3), share_passes=False)
        assert fast.reuses_prefix and fast.pools_while_scoring and not naive.reuses_prefix
        fast.score(alleles)
        naive.score(twins)
    for a, b in zip(alleles, twins):
        assert a.status == b.status and set(a.scores) == set(b.scores)
        for name in ("lldiff", "emb_cosine", "emb_l2", *(("influence",) if k == 1 else ())):
            assert a.scores[name] == pytest.approx(b.scores[name], abs=1e-4), (a.pos, name)
    assert len({round(a.scores["lldiff"], 4) for a in alleles}) == len(alleles)  # not a constant
    # each ALT window runs from its batch's earliest change (about its middle, less near contig ends)
    assert fast.passes["lldiff"] < 0.9 * naive.passes["lldiff"], (fast.passes, naive.passes)
    # the insertion's ALT window outgrows the context: the embedder tiles it, on both strands
    # the embedding distances took no passes of their own (the naive scorer's: both strands of each window)
    windows = {a.scores["window"] for a in alleles}
    assert "embedding" not in fast.passes and naive.passes["embedding"] == 2 * (len(alleles) + len(windows))


def test_contig_aliases():
    resolve = contig_resolver({"chr1": 10, "MT": 5, "scaffold_7": 3}, {"seven": "scaffold_7"})
    assert [resolve(n) for n in ("chr1", "1", "chrM", "MT", "seven", "chr9")] == ["chr1", "chr1", "MT", "MT",
                                                                                 "scaffold_7", None]
    with pytest.raises(GenofmInputError, match="variants.mine.contig_aliases: 'x' -> 'chrX': 'chrX' is not a "
                                               "reference contig"):
        contig_resolver({"chr1": 10}, {"x": "chrX"}, "variants.mine.contig_aliases")
    named = contig_resolver({"chr1": 10}, {}, "variants.mine.contig_aliases")
    assert named("chr9") is None and "map it with variants.mine.contig_aliases" in named.why_unmatched("chr9")


def write_vcf(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join("\t".join(map(str, line)) + "\n" for line in lines))
    return path


def status_vcf(tmp_path, seqs) -> tuple[Path, list[list[str]]]:
    c1 = seqs["chr1"]

    def other(base):
        return "A" if base != "A" else "C"

    expected = [
        (["chr1", 5, "near_start", c1[4], other(c1[4])], ["NEAR_CONTIG_END"]),
        (["chr1", 1001, "snv", c1[1000], other(c1[1000])], ["OK"]),
        (["chr1", 1101, "multi", c1[1100], f"{other(c1[1100])},G" if c1[1100] != "G" else "A,C"], ["OK", "OK"]),
        (["chr1", 1201, "mismatch", other(c1[1200]), c1[1200]], ["REF_MISMATCH"]),
        (["chr1", 1301, "deletion", c1[1300:1305], c1[1300]], ["OK"]),
        (["chr1", 1401, "insertion", c1[1400], c1[1400] + "GATTACA"], ["OK"]),
        (["chr1", 1501, "mnv", c1[1500:1502], other(c1[1500]) + other(c1[1501])], ["OK"]),
        (["chr1", 1601, "symbolic", c1[1600], "<DEL>"], ["SYMBOLIC_ALLELE"]),
        (["chr1", 1701, "star", c1[1700], f"*,{other(c1[1700])}"], ["SYMBOLIC_ALLELE", "OK"]),
        (["chr1", 1801, "ref_n", "N", "A"], ["REF_N"]),
        (["chr1", 1901, "alt_iupac", c1[1900], "R"], ["ALT_NOT_ACGT"]),
        (["chr1", 2001, "no_alt", c1[2000], "."], ["NO_ALT"]),
        (["chr1", 2999, "past_end", c1[2998] + "A" * 5, "A"], ["POS_PAST_END"]),
        (["2", 301, "alias", seqs["chr2"][300], other(seqs["chr2"][300])], ["OK"]),  # "2" is chr2
        (["chr2", 699, "gap_edge", seqs["chr2"][698], other(seqs["chr2"][698])], ["OK"]),  # half N window
        (["chr2", 851, "in_gap", "N", "A"], ["REF_N"]),
        (["chr2", 860, "gap_window", seqs["chr2"][698], "A"], ["REF_MISMATCH"]),
        (["chrUn", 5, "unknown", "A", "C"], ["UNKNOWN_CONTIG"]),
    ]
    lines = [row + [".", "PASS", f"CLASS=c{i % 3}"] for i, (row, _) in enumerate(expected)]
    return write_vcf(tmp_path / "in.vcf", lines), [statuses for _, statuses in expected]


def run_scoring(model_dir, fasta, vcf, out: Path, **cfg):
    callset = cfg.pop("callset", CallsetConfig(class_info_key="CLASS"))
    return score_vcf(ScoringInputs(model_dir, fasta, vcf),
                     ScoringOutputs(out / "out.vcf.gz", out / "out.tsv", out / "summary.json"),
                     ScoringConfig(**cfg), callset)


def bcftools_query(path, fmt):
    require_tool("bcftools")
    proc = subprocess.run(["bcftools", "query", "-f", fmt, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "[W::" not in proc.stderr and "[E::" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def test_every_record_comes_out_with_its_status(genome, model_dir, tmp_path):
    path, seqs = genome
    vcf, expected = status_vcf(tmp_path, seqs)
    summary = run_scoring(model_dir, path, vcf, tmp_path, chunk_records=4)
    assert summary["records_in"] == summary["records_out"] == len(expected)
    statuses = bcftools_query(tmp_path / "out.vcf.gz", "%ID\t%INFO/GFM_STATUS\n")
    assert [line.split("\t")[1].split(",") if "\t." not in line else ["NO_ALT"] for line in statuses] == expected
    assert [line.split("\t")[0] for line in statuses] == [line.split("\t")[2] for line in
                                                           vcf.read_text().splitlines() if not line.startswith("#")]
    table = read_scores(tmp_path / "out.tsv")
    assert list(table["status"]) == [s for statuses in expected for s in statuses]
    assert table.loc[table["id"] == "snv", "llr"].notna().all()
    assert table.loc[table["id"].isin(["deletion", "insertion"]), "llr"].isna().all()
    assert table.loc[table["id"].isin(["deletion", "insertion", "snv", "mnv"]), "emb_cosine"].notna().all()
    assert table.loc[table["id"] == "near_start", "llr"].notna().all()  # shortened window, still scored
    assert table.loc[~table["status"].isin(["OK", "NEAR_CONTIG_END"]), ["llr", "emb_cosine"]].isna().all().all()
    assert set(table["class"]) == {"c0", "c1", "c2"}
    # the index works: a region query returns the records there
    assert bcftools_query_region(tmp_path / "out.vcf.gz", "chr1:1000-1501") == ["snv", "multi", "mismatch",
                                                                                   "deletion", "insertion", "mnv"]


def bcftools_query_region(path, region):
    return subprocess.run(["bcftools", "query", "-r", region, "-f", "%ID\n", str(path)], capture_output=True,
                          text=True, check=True).stdout.split()


def test_output_header_declares_fields_model_and_window(genome, model_dir, tmp_path):
    path, seqs = genome
    vcf, _ = status_vcf(tmp_path, seqs)
    run_scoring(model_dir, path, vcf, tmp_path)
    header = subprocess.run(["bcftools", "view", "-h", str(tmp_path / "out.vcf.gz")], capture_output=True,
                            text=True, check=True).stdout
    for key in ("GFM_STATUS", "GFM_LLR", "GFM_EMB_COS", "GFM_EMB_L2"):
        assert f"##INFO=<ID={key},Number=A" in header
    assert f'##genofm_model=<Path="{model_dir}"' in header
    assert 'Window="141"' in header  # 47 tokens of 3 bases
    assert "##contig=<ID=chrUn>" in header  # undeclared contigs are declared
    scores = bcftools_query(tmp_path / "out.vcf.gz", "%ID\t%INFO/GFM_LLR\n")
    table = read_scores(tmp_path / "out.tsv")
    snv = float(dict(line.split("\t") for line in scores)["snv"])
    assert snv == pytest.approx(table.loc[table["id"] == "snv", "llr"].item(), rel=1e-4, abs=1e-5)


def test_skip_near_contig_end_and_regions(genome, model_dir, tmp_path):
    path, seqs = genome
    vcf, _ = status_vcf(tmp_path, seqs)
    run_scoring(model_dir, path, vcf, tmp_path, near_contig_end="skip",
                callset=CallsetConfig(regions=["chr1:1-1200"], max_unscored_fraction=1.0))
    table = read_scores(tmp_path / "out.tsv")
    near = table[table["id"] == "near_start"]
    assert (near["status"] == "NEAR_CONTIG_END").all() and near["llr"].isna().all()
    assert (table.loc[table["id"] == "insertion", "status"] == "OUTSIDE_REGIONS").all()
    assert (table.loc[table["id"] == "snv", "status"] == "OK").all()


@pytest.mark.parametrize("form", ["vcf.gz", "bcf", "gzip"])
def test_compressed_and_bcf_inputs_give_the_same_output(genome, model_dir, tmp_path, form):
    require_tool("bcftools")
    path, seqs = genome
    vcf, _ = status_vcf(tmp_path, seqs)
    # BCF needs every contig declared
    vcf.write_text(vcf.read_text().replace("##contig=<ID=chr2,length=1500>\n",
                                           "##contig=<ID=chr2,length=1500>\n##contig=<ID=2>\n##contig=<ID=chrUn>\n"))
    (tmp_path / "plain").mkdir()
    run_scoring(model_dir, path, vcf, tmp_path / "plain", embedding=False)
    converted = tmp_path / f"in.{form}"
    if form == "gzip":  # plain gzip, not bgzip: many VCFs in the wild
        converted.write_bytes(gzip.compress(vcf.read_bytes()))
    else:
        subprocess.run(["bcftools", "view", "-O", "z" if form == "vcf.gz" else "b", "-o", str(converted), str(vcf)],
                       check=True, capture_output=True)
    (tmp_path / "other").mkdir()
    run_scoring(model_dir, path, converted, tmp_path / "other", embedding=False)
    ours, theirs = (pd.read_csv(tmp_path / d / "out.tsv", sep="\t") for d in ("plain", "other"))
    pd.testing.assert_frame_equal(ours, theirs)


def test_bad_inputs_give_clear_errors_and_leave_nothing(genome, model_dir, tmp_path):
    path, seqs = genome
    no_header = write_vcf(tmp_path / "no_header.vcf", [["chr1", 5, ".", "A", "C", ".", ".", "."]], header="")
    with pytest.raises(GenofmInputError, match="no_header.vcf: not a readable VCF"):
        run_scoring(model_dir, path, no_header, tmp_path)
    plain_gzip = tmp_path / "plain.vcf.gz"
    plain_gzip.write_bytes(gzip.compress(no_header.read_bytes())[:-10])
    with pytest.raises(GenofmInputError, match="plain.vcf.gz: cannot decompress"):
        run_scoring(model_dir, path, plain_gzip, tmp_path)
    unsorted = write_vcf(tmp_path / "unsorted.vcf", [["chr1", 500, ".", seqs["chr1"][499], "A", ".", ".", "."],
                                                      ["chr1", 400, ".", seqs["chr1"][399], "A", ".", ".", "."]])
    with pytest.raises(GenofmInputError, match=r"record 2 \(chr1:400\) is out of order"):
        run_scoring(model_dir, path, unsorted, tmp_path)
    split = write_vcf(tmp_path / "split.vcf", [["chr1", 5, ".", seqs["chr1"][4], "A", ".", ".", "."],
                                                ["chr2", 5, ".", seqs["chr2"][4], "A", ".", ".", "."],
                                                ["chr1", 9, ".", seqs["chr1"][8], "A", ".", ".", "."]])
    with pytest.raises(GenofmInputError, match="contig chr1 appeared before chr2"):
        run_scoring(model_dir, path, split, tmp_path)
    vcf, _ = status_vcf(tmp_path, seqs)
    pysam.tabix_compress(str(vcf), f"{vcf}.gz", force=True)
    data = Path(f"{vcf}.gz").read_bytes()
    truncated = tmp_path / "truncated.vcf.gz"
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(GenofmInputError, match="truncated.vcf.gz: .*truncated"):
        run_scoring(model_dir, path, truncated, tmp_path)
    assert not list(tmp_path.glob("out.*")) and not (tmp_path / "summary.json").exists()


def test_a_vcf_on_another_build_warns_loudly_with_the_count(genome, model_dir, tmp_path, caplog):
    path, seqs = genome
    rng = np.random.default_rng(3)
    positions = sorted(rng.choice(np.arange(200, 2800), 40, replace=False))
    lines = [["chr1", p + 1, ".", "ACGT"[(("ACGT".index(seqs["chr1"][p])) + 1) % 4] if i % 4 else seqs["chr1"][p],
              "A" if seqs["chr1"][p] != "A" else "C", ".", ".", "."] for i, p in enumerate(positions)]
    vcf = write_vcf(tmp_path / "other_build.vcf", lines)
    with caplog.at_level(logging.WARNING):
        summary = run_scoring(model_dir, path, vcf, tmp_path, embedding=False,  # 75% unscored: allowed here
                              callset=CallsetConfig(max_unscored_fraction=1.0))
    assert summary["records_out"] == 40 and summary["statuses"]["REF_MISMATCH"] == 30
    assert "30 of 40 checked alleles (75%) have a REF that differs" in caplog.text
    assert "another genome build" in caplog.text


def test_report_tables_and_figure_region(genome, model_dir, tmp_path):
    path, seqs = genome
    vcf, _ = status_vcf(tmp_path, seqs)
    run_scoring(model_dir, path, vcf, tmp_path)
    table = read_scores(tmp_path / "out.tsv")
    aurocs = class_pair_aurocs(table)
    assert set(aurocs["score"]) == {"llr", "emb_cosine", "emb_l2"}
    pair = aurocs.set_index(["score", "positive", "negative"])["auroc"]
    assert pair["llr", "c0", "c1"] == pytest.approx(1 - pair["llr", "c1", "c0"])
    top = top_variants(table, 3)
    assert len(top) == 3 and top["llr"].is_monotonic_increasing
    with pysam.FastaFile(str(path)) as fasta:
        contig, start, end = figure_region("", table, fasta, 90)
        worst = table[table["kind"] == "snv"].sort_values("llr").iloc[0]
        assert contig == worst["chrom"] and start <= worst["pos"] - 1 < end and end - start == 90
        assert figure_region("chr2:11-40", table, fasta, 90) == ("chr2", 10, 40)
        scorer = scorer_for(tiny_model(), fasta, embedding=False)
        matrix, seq = ism_matrix(scorer, "chr2", 10, 40)
        causal = scorer_for(tiny_model(k=1, max_len=64, causal=True), fasta, embedding=False)
        assert ism_score(scorer) == "llr" and ism_score(causal) == "influence"
        influence, _ = ism_matrix(causal, "chr2", 10, 20)
        alleles = saturation_alleles(fasta, "chr2", 10, 20)
        causal.score(alleles)
    assert matrix.shape == (4, 30) and seq == seqs["chr2"][10:40]
    assert all(matrix["ACGT".index(b), i] == 0 for i, b in enumerate(seq))
    assert np.count_nonzero(matrix) == 90
    # next-token models map the influence, the score that ranks consequences best
    assert [influence["ACGT".index(a.alt), a.pos - 10] for a in alleles] == [a.scores["influence"] for a in alleles]
    assert any(a.scores["influence"] != a.scores["lldiff"] for a in alleles)


def test_real_chr20_indels_every_record_out_and_ref_checks_pass(chr20, tmp_path):
    """The real indel VCF of vt-examples on human chr20 (GRCh37), with a tiny k=6 model."""
    require_tool("bcftools")
    vcf = chr20.parent / "01_IN.vcf.gz"
    model = tiny_model(k=6, max_len=24)
    model.save_pretrained(tmp_path / "model")
    summary = run_scoring(tmp_path / "model", chr20, vcf, tmp_path, callset=CallsetConfig(), batch_size=64)
    n_in = int(subprocess.run(f"bcftools view -H {vcf} | wc -l", shell=True, capture_output=True, text=True,
                              check=True).stdout)
    assert n_in > 100 and summary["records_in"] == summary["records_out"] == n_in
    assert len(bcftools_query(tmp_path / "out.vcf.gz", "%POS\n")) == n_in
    assert "REF_MISMATCH" not in summary["statuses"]
    ours = bcftools_query(tmp_path / "out.vcf.gz", "%CHROM\t%POS\t%REF\t%ALT\n")
    theirs = bcftools_query(vcf, "%CHROM\t%POS\t%REF\t%ALT\n")
    assert ours == theirs  # same records, same order
    table = read_scores(tmp_path / "out.tsv")
    assert table["emb_cosine"].notna().sum() >= 0.9 * len(table)
    assert json.loads((tmp_path / "summary.json").read_text())["statuses"]["OK"] >= 0.9 * len(table)


# --- real-world inputs: contig names, runs that score nothing, messages ---------------------

def test_contig_resolver_accession_versions_and_ncbi_names(caplog):
    reference = {"gi|88193823|ref|NC_007795.1|": 10, "NC_000913.3": 10, "CP000001": 10, "AB000001.1": 5,
                 "AB000001.2": 5, "emb|X00001.1|": 5, "dbj|D00001.1|": 5}
    with caplog.at_level(logging.INFO, logger="genofm.vcf"):
        resolve = contig_resolver(reference, {})
        got = [resolve(n) for n in ("NC_007795", "NC_007795.1", "NC_007795", "NC_000913", "CP000001.2",
                                    "X00001.1", "D00001", "AB000001", "NC_999999")]
    assert got == ["gi|88193823|ref|NC_007795.1|", "gi|88193823|ref|NC_007795.1|", "gi|88193823|ref|NC_007795.1|",
                   "NC_000913.3", "CP000001", "emb|X00001.1|", "dbj|D00001.1|", None, None]
    assert caplog.text.count("VCF contig NC_007795 read as reference contig gi|88193823|ref|NC_007795.1| "
                             "(accession version)") == 1  # once per contig
    assert "VCF contig NC_000913 read as reference contig NC_000913.3 (accession version)" in caplog.text
    # two candidates: no guess, and the message says so
    assert "AB000001.1" in resolve.why_unmatched("AB000001") and "AB000001.2" in resolve.why_unmatched("AB000001")
    assert "more than one" in resolve.why_unmatched("AB000001")
    unmatched = resolve.why_unmatched("NC_999999")
    assert "7 contigs" in unmatched and "contig_aliases" in unmatched and "NC_000913.3" in unmatched


def test_a_run_that_scores_too_little_fails_and_leaves_nothing(genome, model_dir, tmp_path):
    path, seqs = genome
    renamed = write_vcf(tmp_path / "renamed.vcf", [
        ["NC_000001", p, ".", seqs["chr1"][p - 1], "A" if seqs["chr1"][p - 1] != "A" else "C", ".", ".", "."]
        for p in (100, 200, 300)], header=HEADER.replace("chr1,", "NC_000001,"))
    callset = CallsetConfig(max_unscored_fraction=1.0)
    with pytest.raises(GenofmInputError) as err:  # nothing scored: fails whatever the setting
        run_scoring(model_dir, path, renamed, tmp_path / "out", callset=callset)
    message = str(err.value)
    assert "renamed.vcf" in message and "3 of 3 records" in message and "UNKNOWN_CONTIG: 3" in message
    assert "variants.<callset>.contig_aliases" in message and "chr1" in message and "reference build" in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # mostly REF mismatches: more than max_unscored_fraction (0.5) unscored
    lines = [["chr1", p + 1, ".", "ACGT"[("ACGT".index(seqs["chr1"][p]) + 1) % 4] if i % 4 else seqs["chr1"][p],
              "A" if seqs["chr1"][p] != "A" else "C", ".", ".", "."] for i, p in enumerate(range(200, 2800, 100))]
    mismatched = write_vcf(tmp_path / "mismatched.vcf", lines)
    with pytest.raises(GenofmInputError, match=r"(?s)mismatched.vcf: 19 of 26 records .*REF_MISMATCH: 19.*"
                                               r"max_unscored_fraction"):
        run_scoring(model_dir, path, mismatched, tmp_path / "out", embedding=False)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    summary = run_scoring(model_dir, path, mismatched, tmp_path / "out", embedding=False,
                          callset=CallsetConfig(max_unscored_fraction=0.8))
    assert summary["records_scored"] == 7 and summary["records_not_scored"] == {"REF_MISMATCH": 19}
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["records_scored"] == 7


def test_every_output_record_carries_its_status_in_info(genome, model_dir, tmp_path):
    path, seqs = genome
    vcf, expected = status_vcf(tmp_path, seqs)
    run_scoring(model_dir, path, vcf, tmp_path, embedding=False)
    with gzip.open(tmp_path / "out.vcf.gz", "rt") as lines:
        infos = [line.rstrip("\n").split("\t")[7] for line in lines if not line.startswith("#")]
    statuses = [dict(kv.split("=", 1) for kv in info.split(";") if "=" in kv).get("GFM_STATUS") for info in infos]
    assert [s.split(",") if s else None for s in statuses] == expected


def test_a_bad_field_is_named_with_its_line(genome, model_dir, tmp_path):
    path, seqs = genome
    good = ["chr1", 5, ".", seqs["chr1"][4], "A", ".", ".", "."]
    bad_pos = write_vcf(tmp_path / "bad_pos.vcf", [good, ["chr1", "abc", ".", "A", "C", ".", ".", "."]])
    with pytest.raises(GenofmInputError, match=r"bad_pos.vcf: line 7: POS 'abc' is not a number"):
        run_scoring(model_dir, path, bad_pos, tmp_path)
    short = write_vcf(tmp_path / "short.vcf", [good, good, ["chr1", 9, ".", "A"]])
    with pytest.raises(GenofmInputError, match=r"short.vcf: line 8: 4 tab-separated columns, a VCF record has "
                                               r"at least 8"):
        run_scoring(model_dir, path, short, tmp_path)
    assert not list(tmp_path.glob("out.*"))


def test_codon_positions_come_into_the_table_and_bad_ones_stop_naming_the_record(genome, model_dir, tmp_path):
    path, seqs = genome
    c1 = seqs["chr1"]
    header = HEADER.replace("#CHROM", '##INFO=<ID=CODON_POS,Number=1,Type=Integer,Description="codon position">\n'
                                      "#CHROM")
    alt = lambda b: "A" if b != "A" else "C"  # noqa: E731
    good = write_vcf(tmp_path / "good.vcf", [["chr1", 1001, "a", c1[1000], alt(c1[1000]), ".", "PASS", "CLASS=x;CODON_POS=2"],
                                             ["chr1", 1101, "b", c1[1100], alt(c1[1100]), ".", "PASS", "CLASS=y"]],
                     header)
    run_scoring(model_dir, path, good, tmp_path, embedding=False)
    table = read_scores(tmp_path / "out.tsv")
    assert table["codon_position"].tolist() == [2, 0]
    bad = write_vcf(tmp_path / "bad.vcf", [["chr1", 1001, "a", c1[1000], alt(c1[1000]), ".", "PASS", "CODON_POS=5"]],
                    header)
    with pytest.raises(GenofmInputError, match="record chr1:1001: INFO/CODON_POS=5 is not a codon position"):
        run_scoring(model_dir, path, bad, tmp_path / "bad", embedding=False)
    assert not (tmp_path / "bad" / "out.vcf.gz").exists()


def test_shards_gather_into_the_same_bytes_as_one_run(genome, model_dir, tmp_path):
    """Records at shard edges, a multi-allelic record, indels and unscorable records: three shards
    joined give the one run's VCF, index, table and summary byte for byte."""
    from genofm.variants import ShardParts, gather_shards

    path, seqs = genome
    vcf, _ = status_vcf(tmp_path, seqs)  # 18 records: with chunks of 4, shards of 4, 8 and 6 records
    callset = CallsetConfig(class_info_key="CLASS")
    cfg = ScoringConfig(chunk_records=4)
    whole = ScoringOutputs(tmp_path / "one.vcf.gz", tmp_path / "one.tsv", tmp_path / "one.json")
    score_vcf(ScoringInputs(model_dir, path, vcf), whole, cfg, callset)
    parts = [ShardParts(*(tmp_path / f"{i}.{ext}" for ext in ("vcf", "tsv", "json"))) for i in range(3)]
    records = []
    for i, part in enumerate(parts):
        state = score_vcf(ScoringInputs(model_dir, path, vcf), part, cfg, callset, shard=(i, 3))
        records.append(state["tally"]["records"])
    assert records == [4, 8, 6]
    joined = ScoringOutputs(tmp_path / "joined.vcf.gz", tmp_path / "joined.tsv", tmp_path / "joined.json")
    gather_shards(parts, joined, callset)
    for ours, theirs in zip(joined.paths, whole.paths):
        assert Path(ours).read_bytes() == Path(theirs).read_bytes(), theirs
    with pytest.raises(GenofmInputError, match="6 shards, but its 18 records make 5 chunk.*shards to at most 5"):
        score_vcf(ScoringInputs(model_dir, path, vcf, callset_key="variants.mine"), parts[0], cfg, callset,
                  shard=(0, 6))
    with pytest.raises(GenofmInputError, match="are not the 2 shards of one run"):
        gather_shards(parts[1:], joined, callset)
