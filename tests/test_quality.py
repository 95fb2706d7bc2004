"""Model-quality benchmark pieces: GenBank CDS, true SNV consequences, the Markov baseline,
VEP/snpEff classes, held-out genome blocks and the convolutional model."""

from __future__ import annotations

import gzip
import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from conftest import TESTDATA
from genofm.consequence import Cds, coding_snvs, labelled_snv_set, read_genbank_cds, write_vcf
from genofm.errors import GenofmInputError
from genofm.markov import MarkovModel
from genofm.model import DNALM, ModelConfig
from genofm.regions import genome_blocks, merged_intervals, tile_genome
from genofm.sequence import GENETIC_CODE as CODE
from genofm.sequence import reverse_complement
from genofm.tokenizer import KmerTokenizer
from genofm.vcf import annotated_allele, annotation_layout
from tools.amino_acid_reference import codon_log_probs, model_amino_acid_scores
from tools.coding_references import codon_usage_scores, coding_sites, frame_aware_markov_scores, frame_labels


@pytest.fixture(scope="session")
def mtb() -> tuple[Path, Path]:
    """M. tuberculosis H37Rv from Debian's ariba package (FASTA, GenBank)."""
    directory = TESTDATA / "mtb"
    if not (directory / "NC_000962.3.gb").exists():
        pytest.fail(f"{directory} is missing: run `bash tests/fetch_test_data.sh mtb` first")
    return directory / "NC_000962.3.fa.gz", directory / "NC_000962.3.gb"


@pytest.fixture(scope="session")
def mtb_genome(mtb) -> str:
    with gzip.open(mtb[0], "rt") as handle:
        return "".join(line.strip() for line in handle if not line.startswith(">")).upper()


def translate(coding: str) -> str:
    return "".join(CODE.get(coding[i:i + 3], "X") for i in range(0, len(coding) - 2, 3))


def coding_of(genome: str, c: Cds) -> str:
    plus = genome[c.start:c.end]
    return plus if c.strand == "+" else reverse_complement(plus)


def test_genbank_cds_are_open_reading_frames(mtb, mtb_genome):
    cds, spans, accession = read_genbank_cds(mtb[1])
    assert accession == "NC_000962.3" and len(mtb_genome) == 4_411_532
    assert len(cds) == 3906 and len(spans) > len(cds)
    assert Counter(c.strand for c in cds).keys() == {"+", "-"}
    starts = {"ATG", "GTG", "TTG", "CTG", "ATT", "ATC", "ATA"}  # table 11's start codons
    orfs = 0
    for c in cds:
        coding = coding_of(mtb_genome, c)
        protein = translate(coding)
        if c.pseudo or len(coding) % 3:
            continue
        orfs += coding[:3] in starts and protein[-1] == "*" and "*" not in protein[:-1]
        if c.translation:  # where the file carries the protein, it must be ours
            assert protein[1:-1] == c.translation[1:], c.name
    # coordinates and strands are right: every non-pseudo CDS reads as one open reading frame
    assert orfs >= 3850, orfs


def test_snv_classes_agree_with_whole_protein_translation(mtb, mtb_genome):
    cds, _, _ = read_genbank_cds(mtb[1])
    some = [c for c in cds if not c.pseudo][::40]
    snvs = coding_snvs(mtb_genome, some)
    assert set(snvs["class"]) == {"synonymous", "missense", "stop_gained"}
    assert set(snvs["codon_position"]) == {1, 2, 3}
    by_name = {c.name: c for c in some}
    rng = np.random.default_rng(0)
    for row in snvs.iloc[rng.choice(len(snvs), 600, replace=False)].itertuples():
        c = by_name[row.gene]
        assert mtb_genome[row.pos] == row.ref
        mutant = mtb_genome[:row.pos] + row.alt + mtb_genome[row.pos + 1:]
        before, after = translate(coding_of(mtb_genome, c)), translate(coding_of(mutant, c))
        differences = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        expected = {"synonymous": 0, "missense": 1, "stop_gained": 1}[row[4]]
        assert len(differences) == expected, row
        if row[4] == "stop_gained":
            assert after[differences[0]] == "*" and differences[0] < len(before) - 1
        if row[4] == "missense":
            assert after[differences[0]] != "*"


def test_overlapping_genes_and_start_stop_codons_are_left_out():
    rng = np.random.default_rng(1)
    body = "".join(rng.choice(list("ACG"), 60))  # no T: no stop codon in any frame
    genome = "CC" + "ATG" + body + "TAA" + "CCCCC"
    first = Cds(2, 2 + 66, "+", "first")
    overlapping = Cds(2 + 60, 2 + 69, "+", "second")  # shares the last two codons' bases
    alone = coding_snvs(genome, [first])
    assert alone["pos"].min() == 5 and alone["pos"].max() == 2 + 63 - 1  # no start, no stop codon
    assert len(alone) == 20 * 3 * 3  # 20 inner codons x 3 positions x 3 bases
    both = coding_snvs(genome, [first, overlapping])
    assert both["pos"].max() < 62  # bases inside both CDS are left out
    minus = coding_snvs(reverse_complement(genome), [Cds(len(genome) - 68, len(genome) - 2, "-", "minus")])
    assert sorted(minus["class"]) == sorted(alone["class"])
    with pytest.raises(GenofmInputError, match="runs past the end"):
        coding_snvs(genome, [Cds(2, 80, "+", "long")])


def test_labelled_set_vcf_and_within(tmp_path, mtb, mtb_genome):
    cds, spans, _ = read_genbank_cds(mtb[1])
    within = [(900_000, 1_000_000), (1_900_000, 2_000_000)]
    table = labelled_snv_set(mtb_genome, cds, spans, per_class=50, seed=3, within=within)
    assert Counter(table["class"]) == {"synonymous": 50, "missense": 50, "stop_gained": 50, "intergenic": 50}
    assert all(any(s <= p < e for s, e in within) for p in table["pos"])
    genes = {c.name: c for c in cds}
    for row in table[table["class"] == "intergenic"].itertuples():
        assert not any(s <= row.pos < e for s, e in spans)
    for row in table[table["class"] != "intergenic"].itertuples():
        c = genes[row.gene]
        assert any(s <= c.start and c.end <= e for s, e in within)
    again = labelled_snv_set(mtb_genome, cds, spans, per_class=50, seed=3, within=within)
    assert again.equals(table)
    path = tmp_path / "snvs.vcf"
    write_vcf(table.assign(chrom="NC_000962.3"), [("NC_000962.3", len(mtb_genome))], path)
    with pysam.VariantFile(str(path)) as vcf:
        records = list(vcf)
    assert len(records) == 200 and records[0].info["CLASS"] in {"synonymous", "missense", "stop_gained", "intergenic"}
    assert all(mtb_genome[r.pos - 1] == r.ref for r in records)


def test_genbank_errors(tmp_path):
    path = tmp_path / "x.gb"
    path.write_text("LOCUS x\nORIGIN\n//\n")
    with pytest.raises(GenofmInputError, match="no FEATURES"):
        read_genbank_cds(path)
    path.write_text("LOCUS x\nFEATURES             Location/Qualifiers\n     gene            1..10\n//\n")
    with pytest.raises(GenofmInputError, match="no CDS"):
        read_genbank_cds(path)


def naive_loglik(seq: str, log_probs: np.ndarray, k: int) -> float:
    index = {"".join(p): i for i, p in enumerate(itertools.product("ACGT", repeat=k))}
    return sum(log_probs[index[seq[i - k:i]], "ACGT".index(seq[i])] for i in range(k, len(seq)))


def test_markov_scores_equal_whole_sequence_likelihoods():
    rng = np.random.default_rng(2)
    genome = "".join(rng.choice(list("ACGT"), 3000, p=[0.2, 0.3, 0.3, 0.2]))
    k = 3
    model = MarkovModel(k).fit([genome[:2000]])
    assert model.counts.sum() == 2 * (2000 - k)
    positions = rng.integers(k, 3000 - k, 40)
    alts = ["ACGT".replace(genome[p], "")[rng.integers(3)] for p in positions]
    scores = model.score_snvs(genome, positions, alts)
    table = model.log_probs
    for p, a, score in zip(positions, alts, scores):
        mutant = genome[:p] + a + genome[p + 1:]
        expected = 0.0
        for seq in (genome, mutant):  # whole-sequence log-likelihood, both strands
            sign = 1 if seq is mutant else -1
            expected += sign * (naive_loglik(seq, table, k) + naive_loglik(reverse_complement(seq), table, k)) / 2
        assert math.isclose(score, expected, rel_tol=1e-9, abs_tol=1e-9)
    assert np.isnan(model.score_snvs(genome, [1, 2998], ["A", "A"])).all()  # windows past the ends
    assert np.isnan(model.score_windows(["ACNGTCA"], ["T"])).all()


def test_frame_aware_markov_reference_counts_by_frame():
    rng = np.random.default_rng(4)
    genome = "".join(rng.choice(list("ACGT"), 1200))
    cds = [Cds(100, 400, "+", "a"), Cds(500, 800, "-", "b"), Cds(900, 960, "+", "p", pseudo=True)]
    labels = frame_labels(len(genome), cds)
    assert list(labels[99:104]) == [6, 0, 1, 2, 0] and list(labels[797:801]) == [5, 4, 3, 6]
    assert (labels[900:960] == 6).all()  # pseudogenes are not coding
    k, train = 2, [(0, 700), (800, 1200)]
    counts = Counter()
    for start, end in train:
        for i in range(start + k, end):
            counts[genome[i - k:i], labels[i], genome[i]] += 1
    positions = rng.integers(k, len(genome) - k, 30)
    alts = ["ACGT".replace(genome[p], "")[rng.integers(3)] for p in positions]
    snvs = pd.DataFrame({"pos": positions, "alt": alts})
    scores = frame_aware_markov_scores(genome, cds, snvs, train, order=k)

    def loglik(seq, first):  # naive: counts + 1 over the 4 next bases
        total = 0.0
        for i in range(first, first + k + 1):
            context, label = seq[i - k:i], labels[i]
            total += math.log((counts[context, label, seq[i]] + 1)
                              / sum(counts[context, label, b] + 1 for b in "ACGT"))
        return total

    for p, a, score in zip(positions, alts, scores):
        mutant = genome[:p] + a + genome[p + 1:]
        assert math.isclose(score, loglik(mutant, p) - loglik(genome, p), abs_tol=1e-9)


def test_vep_and_snpeff_classes(tmp_path):
    header = ('##fileformat=VCFv4.2\n##contig=<ID=c,length=100>\n'
              '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. '
              'Format: Allele|Consequence|IMPACT|SYMBOL|Codons">\n'
              '##INFO=<ID=ANN,Number=.,Type=String,Description="Functional annotations: \'Allele | Annotation '
              '| Annotation_Impact | Gene_Name | HGVS.c\' ">\n'
              '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n'
              'c\t5\t.\tA\tG,T\t.\t.\tCSQ=G|synonymous_variant|LOW|x|ctA/ctG,T|stop_gained&splice_region_variant|'
              'HIGH|x|Aaa/Taa,T|missense_variant|MODERATE|y|gAc/gTc;ANN=G|missense_variant|MODERATE|x|c.11A>G,'
              'T|intron_variant|MODIFIER|x|c.40+3A>T\n')
    path = tmp_path / "a.vcf"
    path.write_text(header)
    with pysam.VariantFile(str(path)) as vcf:
        record = next(iter(vcf))
        csq, ann = annotation_layout(vcf.header, "CSQ"), annotation_layout(vcf.header, "ANN")
        assert csq == (0, 1, 4, None) and ann == (0, 1, None, 4)
        # the most severe term, and the codon position of the entry that gives it
        assert [annotated_allele(record.info["CSQ"], alt, csq) for alt in record.alts] == [
            ("synonymous_variant", 3), ("stop_gained", 1)]
        assert [annotated_allele(record.info["ANN"], alt, ann) for alt in record.alts] == [
            ("missense_variant", 2), ("intron_variant", 0)]  # c.11: position 2; intronic c.40+3: none
        assert annotated_allele(record.info["CSQ"], "-", csq) == ("stop_gained", 1)  # no match: every entry
    # through the checker that feeds the scores table and the report
    fasta = tmp_path / "c.fa"
    fasta.write_text(">c\n" + "ACGTA" * 20 + "\n")
    pysam.faidx(str(fasta))
    from genofm.vcf import AlleleChecker

    with pysam.FastaFile(str(fasta)) as fa, pysam.VariantFile(str(path)) as vcf:
        record = next(iter(vcf))
        alleles = AlleleChecker(fa, {}, [], "CSQ").alleles(0, record)
        assert [(a.variant_class, a.codon_position) for a in alleles] == [("synonymous_variant", 3),
                                                                           ("stop_gained", 1)]
        alleles = AlleleChecker(fa, {}, [], "ANN").alleles(0, record)
        assert [(a.variant_class, a.codon_position) for a in alleles] == [("missense_variant", 2),
                                                                           ("intron_variant", 0)]


def test_held_out_blocks_tile_apart(tmp_path):
    assert genome_blocks(1050, 100, 5, "held_out") == [(400, 500), (900, 1000)]
    assert genome_blocks(1050, 100, 5, "train")[-1] == (1000, 1050)
    assert genome_blocks(1050, 0, 5, "train") == [(0, 1050)]
    fasta = tmp_path / "g.fa"
    fasta.write_text(">g\n" + "ACGT" * 300 + "\n")
    pysam.faidx(str(fasta))
    train = tile_genome(fasta, 50, 50, 0.1, block=200, every=3, part="train")
    held = tile_genome(fasta, 50, 50, 0.1, block=200, every=3, part="held_out")
    assert list(zip(held["start"], held["end"])) == [(400, 450), (450, 500), (500, 550), (550, 600),
                                                     (1000, 1050), (1050, 1100), (1100, 1150), (1150, 1200)]
    assert len(train) == 16 and not set(train["start"]) & set(held["start"])
    assert merged_intervals(held) == [(400, 600), (1000, 1200)]


@pytest.mark.parametrize("mixer", ["conv", "hybrid"])
@pytest.mark.parametrize("causal", [False, True])
def test_conv_models_ignore_padding_and_respect_causality(mixer, causal):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=11, max_len=64, n_layers=4, d_model=16, n_heads=2, d_ff=32, mixer=mixer,
                      conv_kernel=3, conv_max_dilation=4, n_attention_layers=1, causal=causal)
    assert [m for m, _ in cfg.block_mixers()] == (["conv"] * 4 if mixer == "conv" else ["conv"] * 3 + ["attention"])
    assert [d for _, d in cfg.block_mixers()][:3] == [1, 2, 4]
    codon = ModelConfig(n_layers=6, mixer="conv", conv_dilation_base=3, conv_max_dilation=27)
    assert [d for _, d in codon.block_mixers()] == [1, 3, 9, 27, 1, 3]
    model = DNALM(cfg).eval()
    ids = torch.randint(6, 10, (2, 40))
    ids[1, 30:] = 1  # padding
    out = model(ids, output_attentions=True)
    alone = model(ids[1:2, :30]).logits
    torch.testing.assert_close(out.logits[1, :30], alone[0], atol=1e-5, rtol=1e-5)
    assert (out.attentions[-1] is None) == (mixer == "conv")
    changed = ids.clone()
    changed[0, 20] = 6 if ids[0, 20] != 6 else 7
    with torch.no_grad():
        delta = (model(changed).logits[0] - model(ids).logits[0]).abs().sum(-1)
    assert float(delta[21:].max()) > 0  # later positions see the change
    assert (float(delta[:20].max()) == 0.0) == causal  # earlier ones only in an encoder


def test_conv_model_config_errors_and_export_refusal(tmp_path):
    with pytest.raises(GenofmInputError, match="mixer"):
        ModelConfig(mixer="lstm")
    with pytest.raises(GenofmInputError, match="conv_kernel"):
        ModelConfig(mixer="conv", conv_kernel=4)
    with pytest.raises(GenofmInputError, match="n_attention_layers"):
        ModelConfig(mixer="hybrid", n_layers=2, n_attention_layers=3)
    from genofm.hf import exportable_problems
    from genofm.tokenizer import KmerTokenizer

    model = DNALM(ModelConfig(vocab_size=11, max_len=32, n_layers=2, d_model=16, n_heads=2, d_ff=32, mixer="conv"))
    assert any("mixer 'conv'" in p for p in exportable_problems(model, KmerTokenizer(k=1)))
    model.save_pretrained(tmp_path)
    again = DNALM.from_pretrained(tmp_path)
    assert again.cfg.mixer == "conv"


def test_coding_sites_and_the_amino_acid_usage_reference(mtb, mtb_genome):
    cds, spans, _ = read_genbank_cds(mtb[1])
    some = [c for c in cds if not c.pseudo][::60]
    snvs = coding_snvs(mtb_genome, some)
    snvs = snvs.iloc[np.random.default_rng(2).choice(len(snvs), 400, replace=False)].reset_index(drop=True)
    by_name = {c.name: c for c in some}
    sites = coding_sites(mtb_genome, some, snvs)
    assert [s.row for s in sites] == list(range(len(snvs)))
    for site, row in zip(sites, snvs.to_dict("records")):
        c = by_name[row["gene"]]
        coding = coding_of(mtb_genome, c)
        offset = row["pos"] - c.start if c.strand == "+" else c.end - 1 - row["pos"]
        assert site.ref == coding[offset - row["codon_position"] + 1:][:3]  # the codon of the protein
        assert sum(a != b for a, b in zip(site.ref, site.alt)) == 1
        amino, new = CODE[site.ref], CODE[site.alt]
        assert row["class"] == ("synonymous" if new == amino else "stop_gained" if new == "*" else "missense")
    train = [(0, len(mtb_genome))]
    per_codon = codon_usage_scores(mtb_genome, cds, snvs, train)
    per_amino = codon_usage_scores(mtb_genome, cds, snvs, train, level="amino_acid")
    synonymous = (snvs["class"] == "synonymous").to_numpy()
    assert (per_amino[synonymous] == 0).all() and (per_codon[synonymous] != 0).any()
    assert (per_amino[(snvs["class"] == "stop_gained").to_numpy()] < -5).all()  # stops are rare in genes
    codons = Counter(coding_of(mtb_genome, c)[i:i + 3] for c in cds if not c.pseudo and (c.end - c.start) % 3 == 0
                     for i in range(3, c.end - c.start - 3, 3))
    row = int(np.flatnonzero(~synonymous)[0])
    ref, alt = CODE[sites[row].ref], CODE[sites[row].alt]
    count = {a: sum(n for codon, n in codons.items() if CODE.get(codon) == a) + 0.5 * sum(CODE[x] == a for x in CODE)
             for a in (ref, alt)}
    assert per_amino[row] == pytest.approx(math.log(count[alt] / count[ref]))


def test_model_amino_acid_scores_equal_codon_likelihoods_counted_by_hand():
    torch.manual_seed(4)
    cfg = ModelConfig(vocab_size=KmerTokenizer(k=1).vocab_size, max_len=64, n_layers=2, d_model=32, n_heads=4,
                      d_ff=64, causal=True, extra={"tokenizer": {"k": 1, "overlapping": False}})
    model, tokenizer = DNALM(cfg).eval(), KmerTokenizer(k=1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    rng = np.random.default_rng(5)
    genome = "".join(rng.choice(list("ACGT"), 40)) + "ATG" + "".join(rng.choice(list("ACG"), 30)) + "TAA" \
        + "".join(rng.choice(list("ACGT"), 40))
    gene = Cds(40, 76, "+", "gene")
    snvs = pd.concat([coding_snvs(genome, [gene]), pd.DataFrame(
        {"pos": [5], "ref": [genome[5]], "alt": ["A" if genome[5] != "A" else "C"], "class": ["intergenic"],
         "gene": [""], "codon_position": [0]})], ignore_index=True)
    context = 12
    scores = model_amino_acid_scores(model, tokenizer, genome, [gene], snvs, context=context, batch_size=7)
    assert np.isnan(scores[-1]) and np.isfinite(scores[:-1]).all()
    assert (scores[(snvs["class"] == "synonymous").to_numpy()] == 0).all()

    def codon_loglik(prefix: str, codon: str) -> float:  # log P(codon | prefix), one pass per codon
        ids = torch.from_numpy(tokenizer.encode(prefix + codon))[None]
        with torch.no_grad():
            logp = model(ids).logits[0].log_softmax(-1)
        return sum(float(logp[len(prefix) + i, ids[0, len(prefix) + i + 1]]) for i in range(3))

    for site in coding_sites(genome, [gene], snvs)[::5]:
        start = site.codon_start
        before, after = genome[start - context:start], genome[start + 3:start + 3 + context]
        amino: dict[str, float] = {}
        for codon in CODE:  # both readings: coding strand from the left, template strand from the right
            both = codon_loglik(before, codon) + codon_loglik(reverse_complement(after), reverse_complement(codon))
            amino[CODE[codon]] = float(np.logaddexp(amino.get(CODE[codon], -np.inf), both))
        # float32 passes batched differently: equal to a few ulps of the summed log-probabilities
        assert scores[site.row] == pytest.approx(amino[CODE[site.alt]] - amino[CODE[site.ref]], abs=2e-5)
    # the same gene on the minus strand of the reverse-complemented genome scores the same
    flipped = reverse_complement(genome)
    minus = Cds(len(genome) - gene.end, len(genome) - gene.start, "-", "gene")
    snvs_minus = coding_snvs(flipped, [minus])
    on_minus = model_amino_acid_scores(model, tokenizer, flipped, [minus], snvs_minus, context=context)
    key = lambda t: sorted(zip(t["gene"], t["codon_position"], t["class"]))  # noqa: E731
    assert key(snvs_minus) == key(snvs.iloc[:-1])
    plus_by = {(len(genome) - 1 - p, reverse_complement(a)): s for p, a, s in zip(snvs["pos"], snvs["alt"], scores)}
    for p, a, s in zip(snvs_minus["pos"], snvs_minus["alt"], on_minus):
        assert s == pytest.approx(plus_by[(p, a)], abs=1e-5)  # float32 passes, batched differently
    with pytest.raises(ValueError, match="one length"):
        codon_log_probs(model, tokenizer, ["ACGT", "ACG"])
    three = KmerTokenizer(k=3)
    with pytest.raises(GenofmInputError, match="single nucleotides"):
        model_amino_acid_scores(DNALM(ModelConfig(vocab_size=three.vocab_size, causal=True)), three, genome, [gene],
                                snvs, context=context)
