"""Whole-genome alignments (MAF, multiz/TBA style) as arrays on reference coordinates.

A MAF block aligns rows of several species; one of them, the reference, has a row in every
block of a reference-projected MAF (maf_project, multiz). For every reference contig, genofm
keeps a uint8 array of shape (contig length, 1 + other species): column 0 the reference's own
base where a block covers it, then the base each other species has aligned to each reference
base. Columns where the reference has a gap are dropped (insertions
relative to the reference have no reference coordinate). Absent rows, gaps and bases stay
distinct, so a model or a conservation score can tell "not aligned" from "deleted":

    ABSENT 0   the species has no row in the block, or no block covers the reference base
    A C G T 1-4, N 5 (any other letter)
    GAP 6      the species' row has a gap at that column

The MAF is streamed block by block (plain, gzip or bgzip) and written into memory-mapped .npy
files, so memory does not grow with the alignment (a 100-way human alignment: 3.1 G reference
bases x 99 bytes on disk). `src` names are `species.contig`, split on the first dot. Several
rows of one species in a block (duplications): the first is kept.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import GenofmInputError

log = logging.getLogger(__name__)

ABSENT, N_CODE, GAP = 0, 5, 6
CODES = np.full(256, N_CODE, dtype=np.uint8)
for _code, _bases in enumerate(("Aa", "Cc", "Gg", "Tt"), start=1):
    for _base in _bases:
        CODES[ord(_base)] = _code
CODES[ord("-")] = GAP
CODES[ord(".")] = GAP
LETTERS = np.frombuffer(b".ACGTN-", dtype=np.uint8)
COMPLEMENT_CODES = np.array([ABSENT, 4, 3, 2, 1, N_CODE, GAP], dtype=np.uint8)  # A<->T, C<->G


def padded_codes(codes: list[np.ndarray], width: int) -> np.ndarray:
    """(B, width, S) uint8 model input from each sequence's (L_i, S) codes: row i's codes at
    positions 1..L_i (after <cls>), ABSENT at <cls> and padding."""
    out = np.full((len(codes), width, codes[0].shape[1]), ABSENT, dtype=np.uint8)
    for i, c in enumerate(codes):
        out[i, 1:1 + len(c)] = c
    return out


def other_species_bases(codes: np.ndarray) -> np.ndarray:
    """How many species other than the reference (column 0) have a base (A, C, G, T or N) in
    each row of `codes` (rows, 1 + species)."""
    others = codes[:, 1:]
    return ((others >= 1) & (others <= N_CODE)).sum(axis=1)  # code -> letter, for display and checks


@dataclass(frozen=True)
class MafRow:
    species: str
    contig: str
    start: int  # 0-based, on the row's strand
    size: int  # bases (not gaps) in the row
    strand: str
    source_size: int
    text: bytes


@dataclass(frozen=True)
class MafBlock:
    line: int  # line number of the block's "a" line (1-based)
    rows: list[MafRow]


def open_maf(path):
    """A MAF, plain or gzip/bgzip (decided by its first bytes), as a binary stream."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_blocks(path) -> Iterator[MafBlock]:
    """The blocks of a MAF with their "s" rows, in file order; "i", "e" and "q" lines are skipped."""
    try:
        yield from _blocks(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise GenofmInputError(f"{path}: truncated or corrupt compressed file ({err})") from err


def _blocks(path) -> Iterator[MafBlock]:
    with open_maf(path) as handle:
        rows: list[MafRow] = []
        start_line = 0
        for number, line in enumerate(handle, start=1):
            if line.startswith(b"s ") or line.startswith(b"s\t"):
                if not start_line:
                    raise GenofmInputError(f"{path}, line {number}: an 's' line outside a block ('a' line missing)")
                rows.append(_parse_row(path, number, line))
            elif line.startswith(b"a"):
                if rows:
                    yield MafBlock(start_line, rows)
                rows, start_line = [], number
            elif not line.strip():
                if rows:
                    yield MafBlock(start_line, rows)
                rows, start_line = [], 0
        if rows:
            yield MafBlock(start_line, rows)


def _parse_row(path, number: int, line: bytes) -> MafRow:
    fields = line.split()
    if len(fields) != 7:
        raise GenofmInputError(f"{path}, line {number}: an 's' line needs 7 fields (s src start size strand "
                               f"srcSize text), found {len(fields)}")
    src = fields[1].decode()
    species, dot, contig = src.partition(".")
    if not dot:
        raise GenofmInputError(f"{path}, line {number}: src {src!r} is not species.contig")
    try:
        start, size, source_size = int(fields[2]), int(fields[3]), int(fields[5])
    except ValueError as err:
        raise GenofmInputError(f"{path}, line {number}: start, size and srcSize must be integers ({err})") from err
    strand = fields[4].decode()
    text = fields[6]
    if strand not in "+-" or len(strand) != 1:
        raise GenofmInputError(f"{path}, line {number}: strand {strand!r} is not + or -")
    bases = len(text) - text.count(b"-")
    if bases != size:
        raise GenofmInputError(f"{path}, line {number}: size says {size} bases, the text has {bases}")
    return MafRow(species, contig, start, size, strand, source_size, text)


COMPLEMENT = bytes.maketrans(b"ACGTNacgtn", b"TGCANtgcan")


def _reverse_complement(text: bytes) -> bytes:
    return text.translate(COMPLEMENT)[::-1]


@dataclass(frozen=True)
class AlignmentSummary:
    blocks: int
    reference_bases: int  # covered by a block
    contigs: dict[str, int]  # reference contig -> length
    species: list[str]  # the array columns, in order: the reference first


def build_arrays(maf, reference: str, species: list[str], out_dir, fasta=None,
                 contigs: dict[str, int] | None = None, config_key: str = "alignment") -> AlignmentSummary:
    """Write `out_dir/{contig}.npy` (uint8, contig length x (1 + len(species)): the reference,
    then `species`) and `out_dir/alignment.json` from `maf`, whose reference rows are `reference`.

    Contig lengths come from `contigs` (e.g. the FASTA index), else from the reference rows'
    srcSize. With `fasta` (a pysam.FastaFile), every reference row's bases must equal the
    reference's (case ignored): a MAF of another assembly stops at the first block that
    differs. Contigs of `contigs` that no block covers get arrays of ABSENT; a reference contig
    of the MAF missing from `contigs` stops the run."""
    if not reference or not species:
        raise GenofmInputError(f"{maf}: name the MAF's reference species and the species to keep in "
                               f"{config_key}.reference_species and {config_key}.species (its first blocks "
                               f"have: {', '.join(species_in(maf))})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    column = {name: i for i, name in enumerate([reference, *species])}
    if reference in species:
        raise GenofmInputError(f"the reference species {reference!r} is also among the aligned species {species}")
    arrays: dict[str, _ArrayFile] = {}
    lengths = dict(contigs or {})
    blocks = covered = 0
    seen: set[str] = set()
    for block in read_blocks(maf):
        seen.update(r.species for r in block.rows)
        ref_rows = [r for r in block.rows if r.species == reference]
        if not ref_rows:
            continue  # a block without the reference has no reference coordinates
        if len(ref_rows) > 1:
            raise GenofmInputError(f"{maf}, block at line {block.line}: {len(ref_rows)} rows of the reference "
                                   f"{reference!r}: not a reference-projected MAF (maf_project)")
        ref = ref_rows[0]
        texts = {r.species: r.text for r in reversed(block.rows) if r.species in column}  # first row wins
        texts[reference] = ref.text
        ref_text = ref.text
        start = ref.start
        if ref.strand == "-":  # put the block on the reference's + strand
            ref_text = _reverse_complement(ref_text)
            texts = {s: _reverse_complement(t) for s, t in texts.items()}
            start = ref.source_size - ref.start - ref.size
        if contigs is not None and ref.contig not in contigs:
            raise GenofmInputError(f"{maf}, block at line {block.line}: reference contig {ref.contig!r} is not in "
                                   f"the reference ({', '.join(list(contigs)[:5])}...)")
        length = lengths.setdefault(ref.contig, ref.source_size)
        if start < 0 or start + ref.size > length:
            raise GenofmInputError(f"{maf}, block at line {block.line}: reference {ref.contig}:{start}-"
                                   f"{start + ref.size} lies outside the contig (length {length})")
        ref_codes = np.frombuffer(ref_text, dtype=np.uint8)
        keep = ref_codes != ord("-")
        if fasta is not None:
            _check_reference(maf, block, fasta, ref.contig, start, ref_codes[keep])
        array = arrays.get(ref.contig)
        if array is None:
            array = arrays[ref.contig] = _ArrayFile(out_dir / f"{ref.contig}.npy", length, len(column))
        if array.covered(start, start + ref.size):
            raise GenofmInputError(f"{maf}, block at line {block.line}: reference {ref.contig}:{start}-"
                                   f"{start + ref.size} is aligned twice (an earlier block covers it): not a "
                                   f"reference-projected MAF")
        codes = np.zeros((ref.size, len(column)), dtype=np.uint8)
        for name, text in texts.items():
            row = CODES[np.frombuffer(text, dtype=np.uint8)]
            if len(row) != len(ref_codes):
                raise GenofmInputError(f"{maf}, block at line {block.line}: the {name} row has {len(row)} "
                                       f"columns, the reference row {len(ref_codes)}")
            codes[:, column[name]] = row[keep]
        array.write(start, codes)
        blocks += 1
        covered += ref.size
    for contig, length in lengths.items():  # contigs no block covers: all absent
        if contig not in arrays:
            arrays[contig] = _ArrayFile(out_dir / f"{contig}.npy", length, len(column))
    for array in arrays.values():
        array.close()
    if not blocks:
        raise GenofmInputError(f"{maf}: no block has a row of the reference species {reference!r} (the MAF has: "
                               f"{', '.join(sorted(seen))}); set {config_key}.reference_species")
    missing = [name for name in species if name not in seen]
    if missing:
        raise GenofmInputError(f"{maf}: {config_key}.species names {', '.join(missing)}, which the MAF does not "
                               f"have (it has: {', '.join(sorted(seen))})")
    left_out = sorted(seen - set(column))
    log.info("%s: %d blocks cover %d reference bases on %d contig(s); columns %s%s", maf, blocks, covered,
             len(arrays), ", ".join(column), f"; left out: {', '.join(left_out)}" if left_out else "")
    summary = AlignmentSummary(blocks, covered, dict(sorted(lengths.items())), [reference, *species])
    (out_dir / "alignment.json").write_text(json.dumps({"reference": reference, **summary.__dict__}, indent=1))
    return summary


class _ArrayFile:
    """A uint8 .npy of shape (rows, columns) written block by block with plain file writes (no
    memory map: the page cache, not the process, holds what was written), zero (ABSENT) where
    nothing was written. Blocks usually come in reference order; one that starts before the end
    of the last is checked against what is there."""

    def __init__(self, path: Path, rows: int, columns: int):
        self.columns = columns
        self.handle = open(path, "wb+")
        np.lib.format.write_array_header_1_0(self.handle, {"descr": "|u1", "fortran_order": False,
                                                           "shape": (rows, columns)})
        self.offset = self.handle.tell()
        self.handle.truncate(self.offset + rows * columns)  # sparse: unwritten rows read as zeros
        self.end = 0

    def covered(self, start: int, end: int) -> bool:
        """Whether an earlier block wrote the reference (column 0) anywhere in [start, end)."""
        if start >= self.end:
            return False
        self.handle.seek(self.offset + start * self.columns)
        written = np.frombuffer(self.handle.read((min(end, self.end) - start) * self.columns), dtype=np.uint8)
        return bool(written[::self.columns].any())

    def write(self, start: int, codes: np.ndarray) -> None:
        self.handle.seek(self.offset + start * self.columns)
        self.handle.write(np.ascontiguousarray(codes).tobytes())
        self.end = max(self.end, start + len(codes))

    def close(self) -> None:
        self.handle.close()


def reference_from_maf(maf, reference: str, out_fasta) -> dict[str, int]:
    """The reference genome a reference-projected MAF carries (TBA/maf_project keep the
    reference's unaligned stretches as blocks of one row), as a bgzip FASTA with .fai and .gzi:
    bases no block covers are N. Holds the genome in memory (for genomes of tens of Mb).
    Returns the contig lengths."""
    import pysam

    from .atomic import atomic_path

    contigs: dict[str, bytearray] = {}
    for block in read_blocks(maf):
        for row in block.rows:
            if row.species != reference:
                continue
            text = row.text if row.strand == "+" else _reverse_complement(row.text)
            start = row.start if row.strand == "+" else row.source_size - row.start - row.size
            sequence = contigs.setdefault(row.contig, bytearray(b"N" * row.source_size))
            sequence[start:start + row.size] = text.replace(b"-", b"")
    if not contigs:
        raise GenofmInputError(f"{maf}: no row of the reference species {reference!r}")
    out_fasta = Path(out_fasta)
    with atomic_path(out_fasta) as tmp:
        plain = Path(f"{tmp}.plain")
        with open(plain, "wb") as handle:
            for name in sorted(contigs):
                handle.write(f">{name}\n".encode())
                sequence = bytes(contigs[name])
                for i in range(0, len(sequence), 80):
                    handle.write(sequence[i:i + 80] + b"\n")
        pysam.tabix_compress(str(plain), str(tmp), force=True)
        plain.unlink()
    pysam.faidx(str(out_fasta))
    return {name: len(sequence) for name, sequence in sorted(contigs.items())}


def species_in(maf, blocks: int = 1000) -> list[str]:
    """The species of the first `blocks` blocks (for messages)."""
    seen: set[str] = set()
    for i, block in enumerate(read_blocks(maf)):
        seen.update(r.species for r in block.rows)
        if i + 1 >= blocks:
            break
    return sorted(seen)


def _check_reference(maf, block: MafBlock, fasta, contig: str, start: int, bases: np.ndarray) -> None:
    expected = fasta.fetch(contig, start, start + len(bases)).upper().encode()
    got = bases.tobytes().upper()
    if got != expected:
        at = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise GenofmInputError(f"{maf}, block at line {block.line}: the reference row has {chr(got[at])} at "
                               f"{contig}:{start + at + 1}, the reference FASTA {chr(expected[at])}: a MAF of "
                               f"another assembly?")


class AlignedColumns:
    """Read the arrays of build_arrays: the aligned bases of any reference interval."""

    def __init__(self, directory):
        self.directory = Path(directory)
        meta = json.loads((self.directory / "alignment.json").read_text())
        self.reference, self.species, self.contigs = meta["reference"], meta["species"], meta["contigs"]
        self._arrays: dict[str, np.ndarray] = {}

    def _array(self, contig: str) -> np.ndarray:
        if contig not in self.contigs:
            raise GenofmInputError(f"{self.directory}: no contig {contig!r} in the alignment "
                                   f"(it has {', '.join(list(self.contigs)[:5])}...)")
        if contig not in self._arrays:
            self._arrays[contig] = np.load(self.directory / f"{contig}.npy", mmap_mode="r")
        return self._arrays[contig]

    def fetch(self, contig: str, start: int, end: int) -> np.ndarray:
        """Codes (end - start, 1 + species) of reference positions [start, end), 0-based."""
        array = self._array(contig)
        if not 0 <= start <= end <= self.contigs[contig]:
            raise GenofmInputError(f"{contig}:{start}-{end} is outside the contig (length {self.contigs[contig]})")
        return np.asarray(array[start:end])

    def take(self, contig: str, positions) -> np.ndarray:
        """Codes (len(positions), 1 + species) at the 0-based `positions` of a contig."""
        array = self._array(contig)
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) and (positions.min() < 0 or positions.max() >= self.contigs[contig]):
            raise GenofmInputError(f"positions outside {contig} (length {self.contigs[contig]})")
        return np.asarray(array[positions])

    def columns(self, species: list[str]) -> list[int]:
        """The array columns of `species` (column 0 is the reference itself)."""
        missing = [name for name in species if name not in self.species[1:]]
        if missing:
            raise GenofmInputError(f"{self.directory}: the alignment has no column for {', '.join(missing)} "
                                   f"(it has {', '.join(self.species[1:])})")
        return [self.species.index(name) for name in species]

    def species_codes(self, contig: str, start: int, end: int, species: list[str], reverse: bool = False) -> np.ndarray:
        """Codes (end - start, len(species)) of `species` over [start, end); `reverse`: as the
        reverse strand reads them (last position first, bases complemented)."""
        codes = self.fetch(contig, start, end)[:, self.columns(species)]
        return COMPLEMENT_CODES[codes[::-1]] if reverse else codes

    def region_codes(self, chroms, starts, ends, strands, species: list[str]) -> list[np.ndarray]:
        """species_codes of each region, on its strand ('-': as its reverse-complemented sequence
        reads them), so row i belongs to base i of the region's sequence."""
        return [self.species_codes(c, s, e, species, reverse=strand == "-")
                for c, s, e, strand in zip(chroms, starts, ends, strands)]

    def letters(self, contig: str, start: int, end: int) -> list[str]:
        """Per species, its aligned letters over the interval ('.' absent, '-' gap)."""
        codes = self.fetch(contig, start, end)
        return [LETTERS[codes[:, i]].tobytes().decode() for i in range(len(self.species))]
