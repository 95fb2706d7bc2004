"""Region extraction: sequences equal `bedtools getfasta -s` on real human chr20; BED,
annotation and tiling sets; bad inputs give errors naming file and line."""

from __future__ import annotations

import logging
import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import require_tool, write_fasta
from genofm.annotation import read_annotation
from genofm.errors import GenofmInputError
from genofm.regions import (build_region_set, contig_lengths, read_bed, read_regions,
                            regions_from_annotation, tile_genome, write_regions)
from genofm.sequence import reverse_complement


def bedtools_sequences(fasta, bed_path):
    """name -> sequence from bedtools getfasta -s -name -tab."""
    require_tool("bedtools")
    out = subprocess.run(["bedtools", "getfasta", "-s", "-tab", "-fi", str(fasta), "-bed", str(bed_path)],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("\t")[1] for line in out.splitlines()]


def to_bed(df, path):
    df[["chrom", "start", "end", "name"]].assign(score=0, strand=df["strand"].replace(".", "+")).to_csv(
        path, sep="\t", header=False, index=False)


def test_bed_sequences_equal_bedtools_on_chr20(tmp_path, chr20, chr20_plain):
    rng = np.random.default_rng(1)
    length = contig_lengths(chr20)["20"]
    starts = rng.integers(0, length - 5000, size=300)
    ends = starts + rng.integers(1, 5000, size=300)
    strands = rng.choice(["+", "-"], size=300)
    bed = tmp_path / "random.bed"
    pd.DataFrame({"c": "20", "s": starts, "e": ends, "n": [f"r{i}" for i in range(300)], "score": 0,
                  "strand": strands, "label": rng.choice(["a", "b"], size=300)}).to_csv(
        bed, sep="\t", header=False, index=False)
    spec = {"type": "bed", "bed": str(bed), "label_column": 7}
    regions = build_region_set(spec, chr20, set_name="random")
    write_regions(regions, chr20, tmp_path / "random.parquet")
    ours = read_regions(tmp_path / "random.parquet")
    # bedtools reads the input BED itself; match by name (our output is sorted)
    names = [f"r{i}" for i in range(300)]
    truth = dict(zip(names, bedtools_sequences(chr20_plain, bed)))
    assert len(ours) == 300
    assert all(seq == truth[name] for name, seq in zip(ours["name"], ours["sequence"]))
    assert set(ours["label"]) == {"a", "b"}


def test_annotation_regions_equal_bedtools_on_chr20(tmp_path, chr20, chr20_plain):
    # a GTF on real chr20 coordinates: two genes, opposite strands, with exons
    gtf = tmp_path / "genes.gtf"
    lines = []
    for gene, strand, exons in [("G1", "+", [(100_001, 100_300), (101_001, 101_500), (103_001, 103_200)]),
                                ("G2", "-", [(200_001, 200_400), (201_001, 201_100)])]:
        attrs = f'gene_id "{gene}"; transcript_id "{gene}.1"; gene_name "{gene}";'
        lo, hi = exons[0][0], exons[-1][1]
        lines.append(f"20\ttest\tgene\t{lo}\t{hi}\t.\t{strand}\t.\t{attrs}")
        lines.append(f"20\ttest\ttranscript\t{lo}\t{hi}\t.\t{strand}\t.\t{attrs}")
        lines += [f"20\ttest\texon\t{s}\t{e}\t.\t{strand}\t.\t{attrs}" for s, e in exons]
    gtf.write_text("\n".join(lines) + "\n")
    for feature in ("promoter", "exon", "intron", "intergenic"):
        spec = {"type": "annotation", "feature": feature, "upstream": 500, "downstream": 100}
        regions = build_region_set(spec, chr20, gtf, "gtf", set_name=feature)
        write_regions(regions, chr20, tmp_path / f"{feature}.parquet")
        ours = read_regions(tmp_path / f"{feature}.parquet")
        to_bed(ours, tmp_path / f"{feature}.bed")
        assert list(ours["sequence"]) == bedtools_sequences(chr20_plain, tmp_path / f"{feature}.bed")
    promoters = read_regions(tmp_path / "promoter.parquet").set_index("name")
    # + strand: TSS at 0-based 100000 -> [99500, 100100); - strand: TSS at 201099 -> [201000, 201600)
    assert tuple(promoters.loc["G1", ["start", "end", "strand"]]) == (99_500, 100_100, "+")
    assert tuple(promoters.loc["G2", ["start", "end", "strand"]]) == (201_000, 201_600, "-")
    introns = read_regions(tmp_path / "intron.parquet")
    assert list(zip(introns["start"], introns["end"])) == [(100_300, 101_000), (101_500, 103_000), (200_400, 201_000)]
    # exons: GTF 1-based inclusive -> 0-based half-open, checked against the GTF lines above
    exons = read_regions(tmp_path / "exon.parquet")
    assert list(zip(exons["start"], exons["end"])) == [(100_000, 100_300), (101_000, 101_500), (103_000, 103_200),
                                                       (200_000, 200_400), (201_000, 201_100)]
    intergenic = read_regions(tmp_path / "intergenic.parquet")
    assert list(zip(intergenic["start"], intergenic["end"]))[:2] == [(0, 100_000), (103_200, 200_000)]


def test_gff3_gets_gene_and_transcript_ids(tmp_path):
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\n"
                   "c\tt\tgene\t11\t100\t.\t-\t.\tID=gene:G1;Name=ABC\n"
                   "c\tt\tmRNA\t11\t100\t.\t-\t.\tID=transcript:T1;Parent=gene:G1\n"
                   "c\tt\texon\t11\t30\t.\t-\t.\tParent=transcript:T1\n"
                   "c\tt\texon\t61\t100\t.\t-\t.\tParent=transcript:T1\n")
    ann = read_annotation(gff)
    promoters = regions_from_annotation(ann, str(gff), "promoter", {"c": 1000}, upstream=20, downstream=5)
    assert promoters[["start", "end", "strand", "name"]].values.tolist() == [[95, 120, "-", "ABC"]]
    introns = regions_from_annotation(ann, str(gff), "intron", {"c": 1000})
    assert introns[["start", "end"]].values.tolist() == [[30, 60]]


def test_tiling_skips_windows_with_too_many_n(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 50 + "N" * 100 + "ACGT" * 50, "b": "ACG"})
    tiles = tile_genome(fasta, window=100, stride=50, max_n_fraction=0.2)
    assert list(tiles["start"]) == [0, 50, 100, 300, 350, 400]  # windows over the N run left out
    assert set(tiles["chrom"]) == {"a"}  # b is shorter than a window


def test_tiling_a_block_at_a_time_keeps_the_same_windows(tmp_path, monkeypatch):
    import genofm.regions as regions

    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGTN"), 5000, p=[0.2, 0.2, 0.2, 0.2, 0.2]))
    fasta = write_fasta(tmp_path / "g.fa", {"a": seq, "b": seq[::-1]})
    whole = tile_genome(fasta, window=300, stride=70, max_n_fraction=0.21)
    monkeypatch.setattr(regions, "TILING_BLOCK", 999)  # blocks that cut windows at every boundary
    pd.testing.assert_frame_equal(tile_genome(fasta, window=300, stride=70, max_n_fraction=0.21), whole)
    assert 0 < len(whole) < 2 * len(range(0, 5000 - 300 + 1, 70))  # some windows left out for their N


def test_regions_are_written_in_chunks_of_bounded_bases(tmp_path):
    """Sequences are attached a bounded number of bases at a time: the same regions, in
    several row groups."""
    import pyarrow.parquet as pq

    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 500})
    tiles = build_region_set({"type": "tiling", "window": 100, "stride": 100}, fasta)  # 20 tiles
    write_regions(tiles, fasta, tmp_path / "one.parquet")
    write_regions(tiles, fasta, tmp_path / "chunked.parquet", chunk_bases=350)  # 3 tiles a chunk
    assert pq.ParquetFile(tmp_path / "chunked.parquet").metadata.num_row_groups == 7
    pd.testing.assert_frame_equal(read_regions(tmp_path / "chunked.parquet"), read_regions(tmp_path / "one.parquet"))
    write_regions(tiles, fasta, tmp_path / "tiny.parquet", chunk_bases=10)  # a region longer than a chunk: alone
    assert pq.ParquetFile(tmp_path / "tiny.parquet").metadata.num_row_groups == 20


def test_minus_strand_is_reverse_complement(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"a": "AAACCCGGGTTTacgt"})
    bed = tmp_path / "x.bed"
    bed.write_text("a\t2\t8\tx\t0\t-\na\t10\t16\ty\t0\t+\n")
    regions = build_region_set({"type": "bed", "bed": str(bed)}, fasta)
    write_regions(regions, fasta, tmp_path / "x.parquet")
    seqs = read_regions(tmp_path / "x.parquet").set_index("name")["sequence"]
    assert seqs["x"] == reverse_complement("ACCCGG") == "CCGGGT"
    assert seqs["y"] == "TTacgt"


@pytest.mark.parametrize("line,message", [
    ("a\t50\t20\n", r"line 2: start \(50\) must be >= 0 and below end \(20\)"),
    ("a\t10\t999\n", r"line 2: interval a:10-999 runs past the end of a \(length 100\)"),
    ("chrZ\t1\t5\n", r"line 2: contig 'chrZ' is not in the reference"),
    ("a\t1.5\t5\n", r"line 2: start and end must be integers, got '1.5'"),
    ("a\t5\n", r"line 2: a BED line needs at least 3"),
    ("a\t1\t5\tn\t0\tx\n", r"line 2: strand \(column 6\) must be"),
])
def test_bad_bed_lines(tmp_path, line, message):
    bed = tmp_path / "bad.bed"
    bed.write_text("a\t0\t10\n" + line)
    with pytest.raises(GenofmInputError, match=str(bed).replace(".", r"\.") + ", " + message):
        read_bed(bed, {"a": 100})


def test_missing_label_column(tmp_path):
    bed = tmp_path / "l.bed"
    bed.write_text("a\t0\t10\tn\t0\t+\tpos\na\t0\t10\tn\t0\t+\n")
    with pytest.raises(GenofmInputError, match=r"line 2: label column 7 is missing"):
        read_bed(bed, {"a": 100}, label_column=7)
    for empty in (".", ""):  # a placeholder is no label: said, not taken as a class named "."
        bed.write_text(f"a\t0\t10\tn\t0\t+\tpos\na\t20\t30\tm\t0\t+\t{empty}\n")
        with pytest.raises(GenofmInputError, match=rf"l\.bed, line 2: label column 7 is empty \('{re.escape(empty)}'\)"):
            read_bed(bed, {"a": 100}, label_column=7)


def test_gtf_without_needed_attributes(tmp_path):
    gtf = tmp_path / "noattr.gtf"
    gtf.write_text('a\tt\texon\t1\t10\t.\t+\t.\tgene_name "x";\na\tt\texon\t20\t30\t.\t+\t.\tgene_name "x";\n')
    with pytest.raises(GenofmInputError, match=r"noattr\.gtf, line 1: exon feature has no gene_id attribute"):
        read_annotation(gtf)
    gtf.write_text('a\tt\texon\t1\t10\t.\t+\t.\tgene_id "g"; transcript_id "t";\n'
                   'a\tt\texon\t20\t30\t.\t+\t.\tgene_id "g"; transcript_id "";\n')
    with pytest.raises(GenofmInputError, match=r"noattr\.gtf, line 2: exon feature has no transcript_id attribute"):
        read_annotation(gtf)
    # gene lines need no transcript_id (Ensembl leaves it out, RefSeq writes it empty)
    gtf.write_text('a\tt\tgene\t1\t30\t.\t+\t.\tgene_id "g"; transcript_id "";\n'
                   'a\tt\tgene\t40\t50\t.\t+\t.\tgene_id "h";\n'
                   'a\tt\texon\t1\t10\t.\t+\t.\tgene_id g; transcript_id t;\n')
    ann = read_annotation(gtf)
    assert sorted(ann["gene_id"]) == ["g", "g", "h"]


@pytest.mark.parametrize("lines,message", [
    (["c\tt\texon\t11\t30\t.\t-\t.\tID=e1"], r"line 4: exon feature has no Parent attribute"),
    (["c\tt\tgene\t200\t300\t.\t+\t.\tName=XYZ"], r"line 4: gene feature has no ID attribute"),
    (["c\tt\texon\t11\t30\t.\t-\t.\tParent=transcript:T9"],
     r"line 4: Parent 'transcript:T9' names no feature's ID in the file"),
    (["c\tt\tCDS\t11\t30\t.\t-\t0\tParent=transcript:T1,transcript:T7"],
     r"line 4: Parent 'transcript:T7' names no feature's ID in the file"),
])
def test_gff3_with_missing_or_dangling_parent(tmp_path, lines, message):
    gff = tmp_path / "p.gff3"
    gff.write_text("##gff-version 3\n"
                   "c\tt\tgene\t11\t100\t.\t-\t.\tID=gene:G1;Name=ABC\n"
                   "c\tt\tmRNA\t11\t100\t.\t-\t.\tID=transcript:T1;Parent=gene:G1\n"
                   + "\n".join(lines) + "\n")
    with pytest.raises(GenofmInputError, match=r"p\.gff3, " + message):
        read_annotation(gff)


def test_gff3_transcript_without_parent_is_its_own_gene(tmp_path, caplog):
    gff = tmp_path / "top.gff3"
    gff.write_text("##gff-version 3\n"
                   "c\tt\tregion\t1\t1000\t.\t+\t.\tID=c\n"
                   "c\tt\tmRNA\t11\t100\t.\t+\t.\tID=T1\n"
                   "c\tt\texon\t11\t30\t.\t+\t.\tParent=T1\n"
                   "c\tt\texon\t61\t100\t.\t+\t.\tParent=T1\n")
    with caplog.at_level(logging.INFO, logger="genofm.annotation"):
        ann = read_annotation(gff)
    assert set(ann.loc[ann["Feature"] == "exon", "gene_id"]) == {"T1"}
    assert any("1 transcript(s) without a Parent" in r.getMessage() for r in caplog.records)


def test_empty_region_set_is_an_error_and_writes_nothing(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"a": "N" * 500})
    with pytest.raises(GenofmInputError, match=r"region set 'tiles' is empty: nothing came out of tiling of .*g\.fa"):
        build_region_set({"type": "tiling", "window": 100, "stride": 100, "max_n_fraction": 0.1}, fasta,
                         set_name="tiles")
    bed = tmp_path / "comments.bed"
    bed.write_text("# nothing here\n")
    with pytest.raises(GenofmInputError, match=r"region set 'b' is empty: nothing came out of .*comments\.bed"):
        build_region_set({"type": "bed", "bed": str(bed)}, fasta, set_name="b")
    import pandas as pd
    with pytest.raises(GenofmInputError, match="region set 'x' is empty"):
        write_regions(pd.DataFrame(columns=["chrom", "start", "end", "strand", "name", "label"]), fasta,
                      tmp_path / "out" / "x.parquet", set_name="x")
    assert not (tmp_path / "out" / "x.parquet").exists()


def test_ensembl_style_gff3_roles(tmp_path):
    """ncRNA_gene / lnc_RNA / pseudogene count as genes and transcripts (Ensembl GFF3)."""
    gff = tmp_path / "ens.gff3"
    gff.write_text("##gff-version 3\n"
                   "c\tensembl\tgene\t101\t200\t.\t+\t.\tID=gene:G1;Name=PC\n"
                   "c\tensembl\tmRNA\t101\t200\t.\t+\t.\tID=transcript:T1;Parent=gene:G1\n"
                   "c\tensembl\texon\t101\t200\t.\t+\t.\tParent=transcript:T1\n"
                   "c\tensembl\tncRNA_gene\t501\t600\t.\t-\t.\tID=gene:G2;Name=LNC\n"
                   "c\tensembl\tlnc_RNA\t501\t600\t.\t-\t.\tID=transcript:T2;Parent=gene:G2\n"
                   "c\tensembl\texon\t501\t600\t.\t-\t.\tParent=transcript:T2\n")
    ann = read_annotation(gff)
    lengths = {"c": 1000}
    promoters = regions_from_annotation(ann, str(gff), "promoter", lengths, upstream=10, downstream=5)
    assert sorted(promoters["name"]) == ["LNC", "PC"]
    intergenic = regions_from_annotation(ann, str(gff), "intergenic", lengths)
    assert list(zip(intergenic["start"], intergenic["end"])) == [(0, 100), (200, 500), (600, 1000)]


def test_annotation_feature_past_contig_end(tmp_path):
    gtf = tmp_path / "long.gtf"
    gtf.write_text('a\tt\texon\t90\t120\t.\t+\t.\tgene_id "g"; transcript_id "t";\n')
    with pytest.raises(GenofmInputError, match=r"long\.gtf: exon g at a:90-120 runs past the end of a \(length 100\)"):
        regions_from_annotation(read_annotation(gtf), str(gtf), "exon", {"a": 100})


@pytest.mark.parametrize("line,message", [
    ('a\tt\texon\t10\t5\t.\t+\t.\tgene_id "g";', r"line 2: start \(10\) must be >= 1 and <= end \(5\)"),
    ('a\tt\texon\t10\t20\t.', r"line 2: a feature line needs 9 tab-separated columns, found 6"),
    ('a\tt\texon\tten\t20\t.\t+\t.\tgene_id "g";', r"line 2: start and end must be integers"),
    ('a\tt\texon\t10\t20\t.\tx\t.\tgene_id "g";', r"line 2: strand \(column 7\)"),
])
def test_malformed_gtf_lines(tmp_path, line, message):
    gtf = tmp_path / "bad.gtf"
    gtf.write_text('a\tt\texon\t1\t5\t.\t+\t.\tgene_id "g"; transcript_id "t";\n' + line + "\n")
    with pytest.raises(GenofmInputError, match=r"bad\.gtf, " + message):
        read_annotation(gtf)


def test_fasta_library_records_are_regions_in_file_order(tmp_path):
    """A designed library (an MPRA's oligos): each record is a region with its own sequence and
    the label its name has in the labels table; file order is kept; gzip is read too."""
    import gzip

    genome = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 10})
    library = tmp_path / "lib.fa.gz"
    with gzip.open(library, "wt") as handle:
        handle.write(">z_oligo first design\nACGTAC\ngtNN\n>a_oligo\nTTTT\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("name\tactivity\tnote\na_oligo\t-0.5\tx\nz_oligo\t1.25\ty\n")
    regions = build_region_set({"type": "fasta", "fasta": str(library), "labels": {"tsv": str(labels),
                                "column": "activity"}}, genome, set_name="lib")
    write_regions(regions, genome, tmp_path / "lib.parquet")
    written = read_regions(tmp_path / "lib.parquet")
    assert written["name"].tolist() == ["z_oligo", "a_oligo"] == written["chrom"].tolist()
    assert written["sequence"].tolist() == ["ACGTACgtNN", "TTTT"]
    assert written["label"].tolist() == ["1.25", "-0.5"]
    assert written[["start", "end", "strand"]].values.tolist() == [[0, 10, "+"], [0, 4, "+"]]
    unlabelled = build_region_set({"type": "fasta", "fasta": str(library), "label": "oligo"}, genome)
    assert unlabelled["label"].tolist() == ["oligo", "oligo"]


@pytest.mark.parametrize("fasta,labels,message", [
    (">a\nACGT\n>a\nAC\n", None, r"lib\.fa, line 3: record 'a' appears twice \(first at line 1\)"),
    (">a\nACRT\n", None, r"lib\.fa, line 2 \(record 'a'\): characters 'R' are not bases A C G T N"),
    ("ACGT\n", None, r"lib\.fa, line 1: sequence before the first '>' header"),
    (">a\n>b\nAC\n", None, r"lib\.fa, line 1: record 'a' has no sequence"),
    ("", None, r"region set 'lib' is empty: .*lib\.fa holds no FASTA record"),
    (">a\nAC\n>b\nAC\n", "name\tlabel\na\tx\n", r"labels\.tsv: 1 region\(s\) of region set 'lib' \(.*lib\.fa\) "
                                                  r"have no row, the first 'b'"),
    (">a\nAC\n", "name\tlabel\na\tx\na\ty\n", r"labels\.tsv: the region name 'a' has several rows \(lines 2 and 3\)"),
    (">a\nAC\n", "id\tlabel\na\tx\n", r"labels\.tsv: no column 'name' \(the header has id, label\)"),
])
def test_bad_fasta_libraries(tmp_path, fasta, labels, message):
    genome = write_fasta(tmp_path / "g.fa", {"a": "ACGT"})
    (tmp_path / "lib.fa").write_text(fasta)
    spec = {"type": "fasta", "fasta": str(tmp_path / "lib.fa")}
    if labels is not None:
        (tmp_path / "labels.tsv").write_text(labels)
        spec["labels"] = {"tsv": str(tmp_path / "labels.tsv"), "column": "label"}
    with pytest.raises(GenofmInputError, match=message):
        build_region_set(spec, genome, set_name="lib")
