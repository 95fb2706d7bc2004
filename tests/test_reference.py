"""Tests for genofm.reference.prepare_reference: formats, selection, masking, bad input."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import random
from pathlib import Path

import pandas as pd
import pysam
import pytest

from genofm import reference
from genofm.errors import GenofmInputError
from genofm.reference import prepare_reference

SEQS = {
    "chr1": "ACGTNNacgtnnGATTACA" * 8,  # 152 bases: several output lines, soft-masked bits
    "chr2": "T" * 60,  # exactly one output line
    "chrM": "GGCCnNa",
}
# The same records, messily written: descriptions, odd widths, CRLF, trailing blanks.
MESSY_FASTA = (
    ">chr1 Homo sapiens chromosome 1\r\n"
    + "\r\n".join(SEQS["chr1"][i : i + 70] for i in range(0, 152, 70))
    + "\r\n\n"
    + ">chr2\tsome description\n"
    + SEQS["chr2"][:13]
    + "  \n"
    + SEQS["chr2"][13:]
    + "\n"
    + ">chrM\n"
    + SEQS["chrM"]  # no final newline
)


def write_input(path: Path, text: str, fmt: str) -> Path:
    """Write `text` as a plain, gzip or bgzip file at `path`."""
    data = text.encode()
    if fmt == "plain":
        path.write_bytes(data)
    elif fmt == "gzip":
        path.write_bytes(gzip.compress(data))
    else:
        with pysam.BGZFile(str(path), "wb") as out:
            out.write(data)
    return path


def prepare(tmp_path: Path, text: str, fmt: str = "plain", name: str = "in.fa", **kwargs):
    """Write the input, prepare it into tmp_path/out/genome.fa.gz; return (table, output)."""
    src = write_input(tmp_path / name, text, fmt)
    out = tmp_path / "out" / "genome.fa.gz"
    return prepare_reference(str(src), out, **kwargs), out


def outputs(out: Path) -> list[Path]:
    return [out, Path(f"{out}.fai"), Path(f"{out}.gzi")]


def assert_no_output(tmp_path: Path) -> None:
    """Nothing at all in the output folder: no FASTA, no index, no temporary leftovers."""
    out_dir = tmp_path / "out"
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


# --- good input ---------------------------------------------------------------------------


def test_plain_gzip_and_bgzip_inputs_give_identical_outputs(tmp_path):
    results = {}
    # Misleading extensions: the format must come from the magic bytes.
    for fmt, name in [("plain", "a.fa.gz"), ("gzip", "b.fa"), ("bgzip", "c.txt")]:
        sub = tmp_path / fmt
        sub.mkdir()
        table, out = prepare(sub, MESSY_FASTA, fmt, name)
        results[fmt] = (table, [p.read_bytes() for p in outputs(out)])
    table, files = results["plain"]
    for fmt in ("gzip", "bgzip"):
        pd.testing.assert_frame_equal(results[fmt][0], table)
        assert results[fmt][1] == files
    assert table.to_dict("records") == [
        {"name": "chr1", "length": 152, "n_count": 32, "source_name": "chr1"},
        {"name": "chr2", "length": 60, "n_count": 0, "source_name": "chr2"},
        {"name": "chrM", "length": 7, "n_count": 2, "source_name": "chrM"},
    ]


def test_output_is_indexed_bgzip_fasta(tmp_path):
    _, out = prepare(tmp_path, MESSY_FASTA, "gzip")
    assert all(p.is_file() for p in outputs(out))
    raw = out.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x04" and raw[12:14] == b"BC"  # gzip with the BGZF field
    with pysam.FastaFile(str(out)) as fasta:
        assert list(fasta.references) == ["chr1", "chr2", "chrM"]
        for name, seq in SEQS.items():
            assert fasta.fetch(name) == seq
        assert fasta.fetch("chr1", 100, 130) == SEQS["chr1"][100:130]  # random access
    lines = gzip.decompress(raw).decode().splitlines()
    assert lines[:5] == [
        ">chr1",
        SEQS["chr1"][:60],
        SEQS["chr1"][60:120],
        SEQS["chr1"][120:],
        ">chr2",
    ]
    assert max(len(line) for line in lines) == 60


def test_long_contig_is_streamed_in_batches(tmp_path):
    # Longer than the write buffer, so the partial-flush path is exercised.
    rng = random.Random(0)
    seq = "".join(rng.choice("ACGTacgtN") for _ in range(reference._WRITE_BATCH * 2 + 77))
    text = ">big\n" + "\n".join(seq[i : i + 70] for i in range(0, len(seq), 70)) + "\n>small\nAC\n"
    table, out = prepare(tmp_path, text)
    with pysam.FastaFile(str(out)) as fasta:
        assert fasta.fetch("big") == seq
        assert fasta.fetch("small") == "AC"
    assert table["length"].tolist() == [len(seq), 2]
    assert table["n_count"].iloc[0] == seq.count("N")


def test_contig_selection_keeps_source_order_and_renames(tmp_path):
    table, out = prepare(
        tmp_path, MESSY_FASTA, contigs=["chrM", "chr1"], rename={"chr1": "1", "chrM": "MT"}
    )
    assert table[["name", "source_name"]].values.tolist() == [["1", "chr1"], ["MT", "chrM"]]
    with pysam.FastaFile(str(out)) as fasta:
        assert list(fasta.references) == ["1", "MT"]
        assert fasta.fetch("MT") == SEQS["chrM"]


def test_yaml_style_integer_names(tmp_path):
    table, _ = prepare(tmp_path, ">1\nAC\n>2\nGT\n", contigs=[2], rename={2: "chr2"})
    assert table["name"].tolist() == ["chr2"]


def test_rename_onto_an_unselected_name_is_fine(tmp_path):
    table, _ = prepare(tmp_path, MESSY_FASTA, contigs=["chr1"], rename={"chr1": "chr2"})
    assert table["name"].tolist() == ["chr2"]


@pytest.mark.parametrize("soft_mask, expected", [("keep", "GGCCnNa"), ("upper", "GGCCNNA")])
def test_soft_mask(tmp_path, soft_mask, expected):
    _, out = prepare(tmp_path, MESSY_FASTA, soft_mask=soft_mask)
    with pysam.FastaFile(str(out)) as fasta:
        assert fasta.fetch("chrM") == expected


def test_iupac_codes_become_n_when_asked(tmp_path):
    table, out = prepare(tmp_path, ">x\nACRYSWKMBDHVn\nrysw\n", ambiguous_bases="to_n")
    with pysam.FastaFile(str(out)) as fasta:
        assert fasta.fetch("x") == "AC" + "N" * 10 + "n" + "nnnn"
    assert table["n_count"].tolist() == [15]


def test_iupac_conversion_is_logged_per_contig(tmp_path, caplog):
    text = ">x\nACRRYn\nrA\n>y\nACGT\n>z\nKKK\n"
    with caplog.at_level(logging.INFO, logger="genofm.reference"):
        prepare(tmp_path, text, ambiguous_bases="to_n")
    messages = [r.getMessage() for r in caplog.records]
    assert any("x: 2 R, 1 Y, 1 r turned into N" in m for m in messages), messages
    assert any("z: 3 K turned into N" in m for m in messages), messages
    assert not any(m.startswith(f"{tmp_path / 'in.fa'}: y:") for m in messages), messages
    assert any("7 IUPAC ambiguity code(s) turned into N in 2 contig(s)" in m for m in messages), messages


def test_good_checksum(tmp_path):
    digest = hashlib.sha256(MESSY_FASTA.encode()).hexdigest()
    table, out = prepare(tmp_path, MESSY_FASTA, checksum=f"sha256:{digest}")
    assert len(table) == 3 and out.is_file()


# --- bad input ----------------------------------------------------------------------------

BAD_INPUTS = {
    # id: (FASTA text, extra kwargs, line, contig or None, words the message must contain)
    "header without sequence": (">a\nACGT\n>b\n\n>c\nACGT\n", {}, 3, "b", "no sequence"),
    "last header without sequence": (">a\nACGT\n>b\n", {}, 3, "b", "no sequence"),
    "invalid character": (">a\nACGT\nACXT\n", {}, 3, "a", "'X' at column 3"),
    "inner whitespace": (">a\nACGT\nAC GT\n", {}, 3, "a", "' ' at column 3"),
    "IUPAC in error mode": (">a\nACGT\n>b\nACRT\n", {}, 4, "b", "IUPAC"),
    "gap in to_n mode": (">a\nAC-T\n", {"ambiguous_bases": "to_n"}, 2, "a", "'-'"),
    "duplicate name": (">a x\nAC\n>b\nAC\n>a y\nAC\n", {}, 5, "a", "duplicate name"),
    "duplicate after rename": (
        ">a\nAC\n>b\nAC\n",
        {"rename": {"b": "a"}},
        3,
        "b",
        "renamed to 'a'",
    ),
    "text before first header": ("\nhello\n>a\nAC\n", {}, 2, None, "before the first '>'"),
    "header without name": (">a\nAC\n> \nAC\n", {}, 3, None, "no contig name"),
}


@pytest.mark.parametrize("fmt", ["plain", "bgzip"])
@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_names_file_line_and_contig(tmp_path, case, fmt):
    text, kwargs, line, contig, words = BAD_INPUTS[case]
    with pytest.raises(GenofmInputError) as info:
        prepare(tmp_path, text, fmt, name="bad_input.fa", **kwargs)
    message = str(info.value)
    assert "bad_input.fa" in message
    assert f"line {line}:" in message
    if contig is not None:
        assert f"contig '{contig}'" in message
    assert words in message
    assert_no_output(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_input(tmp_path, text):
    with pytest.raises(GenofmInputError, match=r"empty\.fa: no FASTA records"):
        prepare(tmp_path, text, name="empty.fa")
    assert_no_output(tmp_path)


def test_missing_contig_lists_what_the_file_has(tmp_path):
    with pytest.raises(
        GenofmInputError, match=r"in\.fa: contigs not in the file: \['chr9'\]"
    ) as info:
        prepare(tmp_path, MESSY_FASTA, contigs=["chr1", "chr9"])
    assert "chr1, chr2, chrM" in str(info.value)
    assert_no_output(tmp_path)


def test_corrupt_and_unsupported_compression(tmp_path):
    truncated = gzip.compress(b">x\n" + b"ACGTTGCA\n" * 20_000)[:-40]
    (tmp_path / "cut.fa.gz").write_bytes(truncated)
    with pytest.raises(GenofmInputError, match=r"cut\.fa\.gz: cannot decompress"):
        prepare_reference(str(tmp_path / "cut.fa.gz"), tmp_path / "out" / "g.fa.gz")
    (tmp_path / "in.fa.bz2").write_bytes(bz2.compress(MESSY_FASTA.encode()))
    with pytest.raises(GenofmInputError, match="bzip2"):
        prepare_reference(str(tmp_path / "in.fa.bz2"), tmp_path / "out" / "g.fa.gz")
    assert_no_output(tmp_path)


def test_checksum_mismatch_leaves_nothing(tmp_path):
    with pytest.raises(GenofmInputError, match="checksum mismatch"):
        prepare(tmp_path, MESSY_FASTA, checksum="md5:" + "0" * 32)
    assert_no_output(tmp_path)


def test_indexing_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_faidx(*args):
        raise pysam.SamtoolsError("faidx failed")

    monkeypatch.setattr(reference.pysam, "faidx", broken_faidx)
    with pytest.raises(pysam.SamtoolsError):
        prepare(tmp_path, MESSY_FASTA)
    assert_no_output(tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"soft_mask": "lower"},
        {"ambiguous_bases": "drop"},
        {"contigs": []},
        {"rename": {"chr1": "chr 1"}},
        {"rename": {"chr1": ""}},
    ],
)
def test_bad_options(tmp_path, kwargs):
    with pytest.raises(GenofmInputError):
        prepare(tmp_path, MESSY_FASTA, **kwargs)
    assert_no_output(tmp_path)
