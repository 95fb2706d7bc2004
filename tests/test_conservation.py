"""Conservation: multi-exon CDS from GTF/GFF lines, four-fold degenerate sites, the species tree,
phyloFit's neutral model and phyloP scores (phast)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from conftest import REPO, copy_workflow, require_tool
from genofm.alignment import AlignedColumns, build_arrays
from genofm.consequence import (coding_snvs, four_fold_sites, labelled_snvs_of_genome, read_cds_lines,
                                read_feature_spans, write_vcf)
from genofm.conservation import binary_tree, fit_neutral_model, parse_topology, phylop_scores, tree_from_maf
from genofm.errors import GenofmInputError
from genofm.sequence import reverse_complement

# a two-exon gene on + (ATG GCT | GGA TAA: Met Ala Gly stop, the intron between) and the same
# gene on - further on
EXON1, INTRON, EXON2 = "ATGGCT", "GTAAGTTTTTTAG", "GGATAA"
GENE = EXON1 + INTRON + EXON2
GENOME = "CC" + GENE + "CCCC" + reverse_complement(GENE) + "CC"
MINUS = 2 + len(GENE) + 4  # where the minus-strand gene starts


def gtf(tmp_path, attribute_format):
    lines = []
    for name, pieces, strand in (("plus", [(2, 8), (21, 27)], "+"), ("minus", [(MINUS, MINUS + 6),
                                                                              (MINUS + 19, MINUS + 25)], "-")):
        for i, (s, e) in enumerate(pieces):
            attrs = attribute_format.format(name=name)
            lines.append(f"c1\tt\texon\t{s + 1}\t{e}\t.\t{strand}\t.\t{attrs}")
            lines.append(f"c1\tt\tCDS\t{s + 1}\t{e}\t.\t{strand}\t0\t{attrs}")
    path = tmp_path / "genes.gff.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.mark.parametrize("attribute, text", [("transcript_id", 'gene_id "g"; transcript_id "{name}";'),
                                             ("name", 'name "{name}"; transcriptId 7'),
                                             ("Parent", "ID=cds;Parent={name}")])
def test_multi_exon_cds_from_gtf_gff2_and_gff3_lines(tmp_path, attribute, text):
    cds = read_cds_lines(gtf(tmp_path, text), attribute)["c1"]
    plus, minus = sorted(cds, key=lambda c: c.start)
    assert plus.segments == ((2, 8), (21, 27)) and plus.length == 12
    assert plus.coding_sequence(GENOME) == minus.coding_sequence(GENOME) == EXON1 + EXON2
    assert list(plus.coding_positions()[5:8]) == [7, 21, 22]  # across the intron
    snvs = coding_snvs(GENOME, cds)
    # the codons between start and stop: GCT (Ala) and GGA (Gly), both four-fold degenerate at base 3
    assert set(snvs["pos"]) == {5, 6, 7, 21, 22, 23} | {MINUS + 21, MINUS + 20, MINUS + 19, MINUS + 5, MINUS + 4,
                                                         MINUS + 3}
    assert set(snvs.loc[snvs["codon_position"] == 3, "class"]) == {"synonymous"}
    assert list(four_fold_sites(GENOME, cds)) == [7, 23, MINUS + 3, MINUS + 19]


def test_a_cds_line_without_its_transcript_attribute_stops(tmp_path):
    path = tmp_path / "bad.gtf"
    path.write_text('c1\tt\tCDS\t3\t8\t.\t+\t0\tgene_id "g";\n')
    with pytest.raises(GenofmInputError, match=r"bad.gtf, line 1: a CDS line without transcript_id"):
        read_cds_lines(path)


def test_labelled_snvs_from_gene_models_over_several_contigs(tmp_path):
    """The two-gene contig twice (c1, c2) and a contig without genes (c3): every class drawn
    over all contigs, codon positions on the coding strand, intergenic SNVs outside every
    feature, a filter and `within` applied, the same draw from the same seed, a VCF of it."""
    import pysam

    from conftest import write_fasta

    annotation = gtf(tmp_path, 'gene_id "g"; transcript_id "{name}";')
    text = gzip.decompress(annotation.read_bytes()).decode()
    both = tmp_path / "both.gtf"
    both.write_text(text + text.replace("c1\t", "c2\t").replace('"plus"', '"plus2"').replace('"minus"', '"minus2"'))
    fasta_path = write_fasta(tmp_path / "g.fa", {"c1": GENOME, "c2": GENOME, "c3": "ACGT" * 20})
    cds, spans = read_cds_lines(both), read_feature_spans(both)
    with pysam.FastaFile(str(fasta_path)) as fasta:
        table = labelled_snvs_of_genome(fasta, cds, spans, per_class=4, seed=5)
        again = labelled_snvs_of_genome(fasta, cds, spans, per_class=4, seed=5)
        odd_only = labelled_snvs_of_genome(fasta, cds, spans, per_class=4, seed=5,
                                           keep=lambda contig, positions: positions % 2 == 1)
        c1_only = labelled_snvs_of_genome(fasta, cds, spans, per_class=4, seed=5, within={"c1": [(0, 58)]})
        assert table.equals(again)
        assert table.groupby("class").size().to_dict() == {"intergenic": 4, "missense": 4, "stop_gained": 4,
                                                           "synonymous": 4}
        assert set(table["chrom"]) <= {"c1", "c2", "c3"} and list(table["chrom"]) == sorted(table["chrom"])
        for row in table.itertuples():
            assert fasta.fetch(row.chrom, row.pos, row.pos + 1) == row.ref != row.alt
            if row._4 == "intergenic":
                assert not any(s <= row.pos < e for s, e in spans.get(row.chrom, []))
        assert (table.loc[table["class"] == "synonymous", "codon_position"] == 3).all()
        assert (odd_only["pos"] % 2 == 1).all() and set(c1_only["chrom"]) == {"c1"}
        write_vcf(table, list(zip(fasta.references, fasta.lengths)), tmp_path / "snvs.vcf")
    with pysam.VariantFile(str(tmp_path / "snvs.vcf")) as vcf:
        records = list(vcf)
    assert len(records) == len(table) and {r.chrom for r in records} == set(table["chrom"])
    assert {r.info["CLASS"] for r in records} == {"intergenic", "missense", "stop_gained", "synonymous"}


TBA_HEADER = "##maf version=1\n# tba.v12 (hg ((mm rn) cf)) x.maf y.maf\n"


def test_the_species_tree_from_the_maf_header(tmp_path):
    maf = tmp_path / "a.maf"
    maf.write_text(TBA_HEADER + "\na\ns hg.c1 0 2 + 9 AC\n")
    assert tree_from_maf(maf) == "(hg,((mm,rn),cf));"
    assert binary_tree("(a,(b,c,d,e),f);", ["a", "b", "c", "d", "e", "f"]) == "((a,(((b,c),d),e)),f);"
    assert binary_tree("(hg:0.1,((mm:0.2,rn:0.2)x:0.1,cf:0.3):0.1);", ["hg", "mm", "cf"]) == "(hg,(mm,cf));"
    assert parse_topology("((a,b),c);") == [["a", "b"], "c"]
    for bad, message in (("(a,b", r"'\)' expected at 'the end'"), ("(a,,b);", "a species name expected at ','")):
        with pytest.raises(GenofmInputError, match=message):
            parse_topology(bad)
    with pytest.raises(GenofmInputError, match="does not have dog"):
        binary_tree("(hg,mm);", ["hg", "dog"])
    bare = tmp_path / "bare.maf"
    bare.write_text("##maf version=1\na\ns hg.c1 0 2 + 9 AC\n")
    with pytest.raises(GenofmInputError, match="names no species tree"):
        tree_from_maf(bare)


def simulated_alignment(tmp_path, n_neutral=3000, n_conserved=200, seed=0):
    """Five species on a star-ish tree: neutral columns where each species' base changes with
    probability 0.3, conserved columns identical in all; then 50 columns only the reference has."""
    rng = np.random.default_rng(seed)
    species = ["hg", "pt", "mm", "rn", "cf"]
    n = n_neutral + n_conserved
    reference = rng.choice(list("ACGT"), n)
    rows = {"hg": reference}
    for name in species[1:]:
        change = rng.random(n) < 0.3
        change[n_neutral:] = False
        rows[name] = np.where(change, rng.choice(list("ACGT"), n), reference)
    genome = "".join(reference) + "A" * 50
    text = TBA_HEADER.replace("(hg ((mm rn) cf))", "((hg pt) ((mm rn) cf))") + "\n"
    text += "a\n" + "\n".join(f"s {name}.c1 0 {n} + {n + 50} {''.join(rows[name])}" for name in species) + "\n\n"
    text += f"a\ns hg.c1 {n} 50 + {n + 50} {'A' * 50}\n"
    maf = tmp_path / "sim.maf"
    maf.write_text(text)
    build_arrays(maf, "hg", species[1:], tmp_path / "arrays", contigs={"c1": len(genome)})
    return maf, AlignedColumns(tmp_path / "arrays"), n_neutral, n_conserved


def test_phylofit_and_phylop_tell_conserved_columns_from_neutral_ones(tmp_path):
    require_tool("phyloFit")
    maf, columns, n_neutral, n_conserved = simulated_alignment(tmp_path)
    neutral = [("c1", np.arange(0, n_neutral, 2))]
    fit = fit_neutral_model(columns, neutral, tree_from_maf(maf), tmp_path / "neutral.mod", tmp_path)
    assert fit["columns"] == n_neutral // 2 and fit["tree"] == "((hg,pt),((mm,rn),cf));"
    assert 0.5 < fit["total_branch_length"] < 5  # a 0.3 chance of change per species and column
    assert (tmp_path / "neutral.mod").read_text().startswith("ALPHABET")
    # phyloFit starts from random values: the seed makes the model the same on every run
    fit_neutral_model(columns, neutral, tree_from_maf(maf), tmp_path / "again.mod", tmp_path / "again")
    assert (tmp_path / "again.mod").read_bytes() == (tmp_path / "neutral.mod").read_bytes()
    wanted = [("c1", np.arange(1, n_neutral, 2)), ("c1", np.arange(n_neutral, n_neutral + n_conserved)),
              ("c1", np.array([n_neutral + n_conserved + 3]))]
    scores = phylop_scores(tmp_path / "neutral.mod", columns, wanted, tmp_path)
    held_out, conserved, lone = scores[:n_neutral // 2], scores[n_neutral // 2:-1], scores[-1]
    assert np.isnan(lone)  # only the reference aligned: no score
    assert not np.isnan(held_out).any() and not np.isnan(conserved).any()
    assert conserved.mean() > 0.5 and held_out.mean() < conserved.mean() - 0.5
    auroc = (conserved[:, None] > held_out[None, :]).mean() + 0.5 * (conserved[:, None] == held_out[None, :]).mean()
    assert auroc > 0.8


# --- through the workflow: the demo genome with a simulated alignment -------------------------

def demo_alignment(path, seed=3):
    """A MAF of the demo genome (reference "demo") and four other species in 4 kb blocks: each
    base of another species changes with probability 0.25, but only 0.02 at the first two bases
    of codons (so coding changes that alter the protein sit in conserved columns)."""
    from genofm.consequence import read_cds_lines

    rng = np.random.default_rng(seed)
    cds = read_cds_lines(REPO / "config/demo/annotation.gtf")
    contigs: dict[str, list[str]] = {}
    with gzip.open(REPO / "config/demo/genome.fa.gz", "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                name = line[1:].split()[0]
                contigs[name] = []
            else:
                contigs[name].append(line.strip())
    lines = ["##maf version=1", "# tba.v12 (demo ((sp1 sp2) (sp3 sp4))) x.maf", ""]
    for contig, pieces in contigs.items():
        sequence = np.array(list("".join(pieces)))
        length = len(sequence)
        rate = np.full(length, 0.25)
        for c in cds.get(contig, []):
            positions = c.coding_positions()
            rate[positions[np.arange(len(positions)) % 3 != 2]] = 0.02
        for start in range(0, length, 4000):
            end = min(length, start + 4000)
            lines += ["a score=0", f"s demo.{contig} {start} {end - start} + {length} {''.join(sequence[start:end])}"]
            for species in ("sp1", "sp2", "sp3", "sp4"):
                change = rng.random(end - start) < rate[start:end]
                row = np.where(change, rng.choice(list("ACGT"), end - start), sequence[start:end])
                lines.append(f"s {species}.{contig} {start} {end - start} + {length} {''.join(row)}")
            lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


# call sets get phyloP through the workflow: tests/test_aligned_model.py's workflow test (one demo
# run with the simulated alignment covers phyloP and the alignment-aware model)


@pytest.mark.workflow
def test_labelled_snvs_from_the_annotation_through_the_workflow(tmp_path):
    import subprocess
    import sys

    import pysam
    import yaml

    workdir = copy_workflow(tmp_path)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["genomes"]["demo"]["alignment"] = {
        "source": str(demo_alignment(tmp_path / "demo.maf")), "reference_species": "demo",
        "species": ["sp1", "sp2", "sp3", "sp4"]}
    config["models"], config["probes"] = {"demo_mlm": config["models"]["demo_mlm"]}, {}
    config["variants"] = {"from_genes": {"vcf": "results/demo/labelled_snvs/from_genes.vcf", "genome": "demo",
                                         "model": "demo_mlm", "labelled_snvs": {
                                             "annotation": True, "per_class": 30, "min_aligned_species": 4,
                                             "seed": 2}}}
    (workdir / "labelled.yaml").write_text(yaml.safe_dump(config))
    target = "results/demo/labelled_snvs/from_genes.vcf"
    proc = subprocess.run([sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile",
                           "labelled.yaml"], cwd=workdir, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with pysam.VariantFile(str(workdir / target)) as vcf:
        records = list(vcf)
    classes = [r.info["CLASS"] for r in records]
    assert {c: classes.count(c) for c in set(classes)} == {"synonymous": 30, "missense": 30, "stop_gained": 30,
                                                           "intergenic": 30}
    assert {r.chrom for r in records} == {"chr1", "chr2"}
    assert all(r.info["CODON_POS"] in (1, 2, 3) for r in records if r.info["CLASS"] != "intergenic")
