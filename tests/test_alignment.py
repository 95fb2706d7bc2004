"""Whole-genome alignments: a MAF streamed into per-contig arrays on reference coordinates."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pysam
import pytest

from conftest import copy_workflow
from genofm.alignment import ABSENT, GAP, AlignedColumns, build_arrays, read_blocks
from genofm.errors import GenofmInputError

#            0         1         2
#            012345678901234567890123456789
CHR1 = "ACGTACGTTTGACCAGTAAACCCGGGTTTA"
CHR2 = "GGGGCCCCAAAA"

MAF = """##maf version=1 scoring=tba.v8
# a comment

a score=10.0
s hg.chr1 2 8 + 30 GTA-CGTTT
s mm.scaffold7 100 8 - 900 GTACC-TTT
i mm.scaffold7 C 0 C 0

a score=3.0
s mm.scaffold9 5 4 + 900 ACGT

a score=5.0
s hg.chr1 12 6 - 30 TACT-GG
s cf.c1 0 7 + 50 TAACCGG
s mm.x 0 5 + 90 T--ACTG
s mm.y 0 7 + 90 AAAAAAA
"""
# block 1: chr1[2:10] = GTACGTTT, with a column where the reference has a gap (mm's C)
# block 2: no reference row
# block 3: the reference row on the - strand (start 30 - 12 - 6 = 12: chr1[12:18] = CCAGTA,
# written reverse-complemented); mm has two rows


def write(tmp_path, text, name="a.maf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def fasta(tmp_path):
    path = tmp_path / "ref.fa"
    path.write_text(f">chr1\n{CHR1}\n>chr2\n{CHR2}\n")
    pysam.faidx(str(path))
    return pysam.FastaFile(str(path))


def test_blocks_become_columns_on_reference_coordinates(tmp_path):
    summary = build_arrays(write(tmp_path, MAF), "hg", ["mm", "cf"], tmp_path / "arrays", fasta=fasta(tmp_path),
                           contigs={"chr1": 30, "chr2": 12})
    assert summary.blocks == 2 and summary.reference_bases == 14
    assert summary.species == ["hg", "mm", "cf"] and summary.contigs == {"chr1": 30, "chr2": 12}
    columns = AlignedColumns(tmp_path / "arrays")
    ref, mm, cf = columns.letters("chr1", 0, 30)
    # block 1: the reference gap column (mm's second C) has no coordinate: dropped
    assert (ref[2:10], mm[2:10], cf[2:10]) == ("GTACGTTT", "GTAC-TTT", "........")
    # block 3 on the + strand: ref CC-AGTA, cf CCGGTTA, mm's first row CAGT--A; column 3 dropped
    assert (ref[12:18], cf[12:18], mm[12:18]) == ("CCAGTA", "CCGTTA", "CAT--A")
    assert (ref[:2], ref[10:12], ref[18:]) == ("..", "..", "." * 12)  # no block covers them
    assert columns.letters("chr2", 0, 12) == ["." * 12] * 3  # a contig no block covers: all absent
    codes = columns.fetch("chr1", 2, 10)
    assert codes.shape == (8, 3) and codes.dtype == np.uint8 and (codes[:, 2] == ABSENT).all()
    assert codes[4, 1] == GAP
    with pytest.raises(GenofmInputError, match="no contig 'chr3'"):
        columns.fetch("chr3", 0, 1)
    with pytest.raises(GenofmInputError, match="chr1:25-31 is outside the contig"):
        columns.fetch("chr1", 25, 31)


def test_reference_on_the_minus_strand(tmp_path):
    """A block whose reference row is on - : every row reverse-complemented, positions mirrored;
    contig lengths from the reference rows' srcSize when none are given."""
    maf = write(tmp_path, "a\ns hg.chr1 12 6 - 30 TA-CTGG\ns cf.c1 0 7 + 50 TAACTGC\n")
    summary = build_arrays(maf, "hg", ["cf"], tmp_path / "arrays", fasta=fasta(tmp_path))
    assert summary.contigs == {"chr1": 30}
    ref, cf = AlignedColumns(tmp_path / "arrays").letters("chr1", 12, 18)
    # on +: ref CCAG-TA, cf GCAGTTA; the reference gap column dropped
    assert (ref, cf) == ("CCAGTA", "GCAGTA")


def test_gzip_and_the_reference_check(tmp_path):
    plain = write(tmp_path, "a\ns hg.chr1 0 4 + 30 ACGT\ns mm.s 0 4 + 9 ACGA\n")
    packed = tmp_path / "a.maf.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    build_arrays(packed, "hg", ["mm"], tmp_path / "gz", fasta=fasta(tmp_path))
    assert AlignedColumns(tmp_path / "gz").letters("chr1", 0, 4) == ["ACGT", "ACGA"]
    wrong = write(tmp_path, "a score=1\ns hg.chr1 0 4 + 30 ACGA\ns mm.s 0 4 + 9 ACGA\n", "wrong.maf")
    with pytest.raises(GenofmInputError, match=r"wrong.maf, block at line 1: the reference row has A at "
                                               r"chr1:4, the reference FASTA T"):
        build_arrays(wrong, "hg", ["mm"], tmp_path / "w", fasta=fasta(tmp_path))


def test_a_truncated_gzip_maf_stops(tmp_path):
    whole = gzip.compress(MAF.encode() * 50)
    cut = tmp_path / "cut.maf.gz"
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(GenofmInputError, match=r"cut.maf.gz: truncated or corrupt compressed file"):
        list(read_blocks(cut))


def test_species_as_configured(tmp_path, caplog):
    maf = write(tmp_path, MAF)
    with pytest.raises(GenofmInputError, match=r"name the MAF's reference species and the species to keep in "
                                               r"genomes.g.alignment.reference_species .* have: cf, hg, mm\)"):
        build_arrays(maf, "hg", [], tmp_path / "a", config_key="genomes.g.alignment")
    with pytest.raises(GenofmInputError, match=r"alignment.species names rn, which the MAF does not have "
                                               r"\(it has: cf, hg, mm\)"):
        build_arrays(maf, "hg", ["mm", "rn"], tmp_path / "b")
    with pytest.raises(GenofmInputError, match=r"no block has a row of the reference species 'hs' \(the MAF "
                                               r"has: cf, hg, mm\); set alignment.reference_species"):
        build_arrays(maf, "hs", ["mm"], tmp_path / "c")
    with pytest.raises(GenofmInputError, match=r"reference contig 'chr1' is not in the reference \(chrX"):
        build_arrays(maf, "hg", ["mm"], tmp_path / "d", contigs={"chrX": 30})
    with caplog.at_level("INFO", logger="genofm.alignment"):
        summary = build_arrays(maf, "hg", ["mm"], tmp_path / "e")
    assert summary.species == ["hg", "mm"] and "left out: cf" in caplog.text


@pytest.mark.parametrize("text, message", [
    ("a\ns hg.chr1 0 4 + 30 ACG\n", r"line 2: size says 4 bases, the text has 3"),
    ("a\ns hg.chr1 0 4 + 30\n", r"line 2: an 's' line needs 7 fields"),
    ("a\ns hgchr1 0 4 + 30 ACGT\n", r"line 2: src 'hgchr1' is not species.contig"),
    ("a\ns hg.chr1 x 4 + 30 ACGT\n", r"line 2: start, size and srcSize must be integers"),
    ("a\ns hg.chr1 0 4 * 30 ACGT\n", r"line 2: strand '\*' is not \+ or -"),
    ("s hg.chr1 0 4 + 30 ACGT\n", r"line 1: an 's' line outside a block"),
    ("a\ns hg.chr1 28 4 + 30 ACGT\n", r"block at line 1: reference chr1:28-32 lies outside the contig"),
    ("a\ns hg.chr1 0 4 + 30 ACGT\n\na\ns hg.chr1 2 2 + 30 GT\n", r"block at line 4: reference chr1:2-4 is "
                                                               r"aligned twice"),
    ("a\ns hg.chr1 0 4 + 30 ACGT\ns hg.chr2 0 4 + 12 GGGG\n", r"2 rows of the reference 'hg'"),
    ("a\ns hg.chr1 0 4 + 30 ACGT\ns mm.s 0 3 + 9 ACG\n", r"the mm row has 3 columns, the reference row 4"),
])
def test_bad_maf(tmp_path, text, message):
    with pytest.raises(GenofmInputError, match=message):
        build_arrays(write(tmp_path, text), "hg", ["mm"], tmp_path / "arrays")


def test_blocks_stream_in_file_order(tmp_path):
    blocks = list(read_blocks(write(tmp_path, MAF)))
    assert [b.line for b in blocks] == [4, 9, 12]
    assert [len(b.rows) for b in blocks] == [2, 1, 4]
    assert blocks[0].rows[1].species == "mm" and blocks[0].rows[1].contig == "scaffold7"


# --- the real Zymoseptoria alignment --------------------------------------------------------

ZYMO_SPECIES = ["Ztritici_A26b", "Ztritici_A48b", "Zpseudotritici_221", "Zpseudotritici_3111",
                "Zpseudotritici_431", "Zpseudotritici_53", "Zpseudotritici_591", "Zardabiliae_111",
                "Zardabiliae_112", "Zardabiliae_3131", "Zardabiliae_332", "Spasserinii_P63"]
# the MAF's second block (chr_15, reference bases 14675-14734), as its lines give it
ZYMO_BLOCK = {"Ztritici_IPO323": "AGTAGTACTCTTGTTCGTATAGTTACTAGTAGACATTAGCCCCTTACTACTACTACTAA",
              "Ztritici_A26b": "AATAGTACTCTTTATAGTATAGTTACCGGTAGAGGTAGGGCTCTTACTACTACTACTAA",
              "Zpseudotritici_591": "--TAGTACTCTTTATAGTATAGTTACCGGTTAAGGTCGGTTACTTACTACTACTA----",
              "Zardabiliae_111": "." * 59}


def check_zymo_arrays(directory, fasta_path):
    columns = AlignedColumns(directory)
    assert columns.species == ["Ztritici_IPO323", *ZYMO_SPECIES] and len(columns.contigs) == 21
    letters = dict(zip(columns.species, columns.letters("chr_15", 14675, 14734)))
    assert {name: letters[name] for name in ZYMO_BLOCK} == ZYMO_BLOCK
    with pysam.FastaFile(str(fasta_path)) as fasta:
        reference = fasta.fetch("chr_1", 1_000_000, 1_100_000)
    assert columns.letters("chr_1", 1_000_000, 1_100_000)[0] == reference.upper()


def test_the_zymoseptoria_alignment_streams_into_arrays(zymo, tmp_path):
    with pysam.FastaFile(str(zymo / "IPO323.fa.gz")) as fasta:
        summary = build_arrays(zymo / "tba_refIPO323.maf.gz", "Ztritici_IPO323", ZYMO_SPECIES, tmp_path / "arrays",
                               fasta=fasta, contigs=dict(zip(fasta.references, fasta.lengths)))
    assert summary.reference_bases / sum(summary.contigs.values()) > 0.999  # TBA keeps unaligned stretches
    check_zymo_arrays(tmp_path / "arrays", zymo / "IPO323.fa.gz")


@pytest.mark.workflow
def test_the_alignment_rule_on_the_zymoseptoria_alignment(zymo, tmp_path):
    workdir = copy_workflow(tmp_path)
    config = {"genomes": {"zt": {"source": str(zymo / "IPO323.fa.gz"), "region_sets": {}, "alignment": {
        "source": str(zymo / "tba_refIPO323.maf.gz"), "reference_species": "Ztritici_IPO323",
        "species": ZYMO_SPECIES}}}, "models": {}, "probes": {}, "variants": {}}
    (workdir / "zt.yaml").write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "zt.yaml"],
                          cwd=workdir, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    check_zymo_arrays(workdir / "results/zt/alignment", zymo / "IPO323.fa.gz")
    log = (workdir / "logs/zt/alignment_arrays.log").read_text()
    assert "50784 blocks cover" in log and "columns Ztritici_IPO323, Ztritici_A26b" in log
