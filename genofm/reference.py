"""Prepare a reference genome: fetch a FASTA, validate it, write a bgzipped, indexed copy.

The source (URL or path; plain, gzip or bgzip, told apart by magic bytes) is fetched into a
temporary file, checksum-verified there, then read line by line: memory holds one input line
and a small write buffer, never a whole contig or genome. Each record is checked, optionally
filtered, renamed, upper-cased and IUPAC-cleaned, and rewrapped at 60 bases a line into a BGZF
file; `pysam.faidx` then adds the .fai and .gzi indexes. All three appear together, or none.
"""

from __future__ import annotations

import contextlib
import gzip
from collections import Counter
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pysam

from genofm.atomic import atomic_paths
from genofm.download import fetch
from genofm.errors import GenofmInputError
from genofm.files import UNSUPPORTED_MAGIC, compression
from genofm.sequence import IUPAC_AMBIGUITY, IUPAC_TO_N, VALID_BASES

LINE_WIDTH = 60
SOFT_MASK_MODES = ("keep", "upper")
AMBIGUOUS_MODES = ("error", "to_n")
_WRITE_BATCH = LINE_WIDTH * 4096  # bases buffered before a write: few, large BGZF writes
# bytes.translate deletion table: everything except the IUPAC ambiguity codes (C-speed count)
_NOT_IUPAC = bytes(b for b in range(256) if chr(b) not in IUPAC_AMBIGUITY)


@dataclass
class _Contig:
    """Bookkeeping for the record being read."""

    source_name: str
    name: str  # after renaming
    header_line: int
    keep: bool
    length: int = 0
    n_count: int = 0
    converted: Counter | None = None  # IUPAC code -> count turned into N (ambiguous_bases=to_n)


def prepare_reference(
    source: str,
    out_fasta: Path,
    *,
    checksum: str | None = None,
    contigs: list[str] | None = None,
    rename: dict[str, str] | None = None,
    soft_mask: str = "keep",
    ambiguous_bases: str = "error",
    retries: int = 4,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 60.0,
    log: logging.Logger | None = None,
) -> pd.DataFrame:
    """Write `out_fasta` (bgzipped, line width 60) plus its .fai and .gzi indexes.

    contigs keeps only the named records (source names, output in source order); rename maps
    source names to output names; soft_mask is "keep" (lower case stays) or "upper";
    ambiguous_bases is "error" or "to_n" (IUPAC codes become N/n). Returns one row per
    written contig: name, length, n_count, source_name. Bad input raises GenofmInputError and
    leaves no output behind.
    """
    log = log or logging.getLogger(__name__)
    if soft_mask not in SOFT_MASK_MODES:
        raise GenofmInputError(f"soft_mask must be one of {SOFT_MASK_MODES}, not {soft_mask!r}")
    if ambiguous_bases not in AMBIGUOUS_MODES:
        raise GenofmInputError(
            f"ambiguous_bases must be one of {AMBIGUOUS_MODES}, not {ambiguous_bases!r}"
        )
    if contigs is not None and len(contigs) == 0:
        raise GenofmInputError("contigs is an empty list: give None to keep every contig")
    # YAML reads `1: chr1` or `[1, 2, X]` with integer names; contig names are always text.
    contigs = None if contigs is None else [str(c) for c in contigs]
    rename = {str(k): str(v) for k, v in (rename or {}).items()}
    for old_name, new_name in rename.items():
        # The output name goes into a FASTA header and the .fai, where whitespace would split it.
        if not new_name or new_name.startswith(">") or any(ch.isspace() for ch in new_name):
            raise GenofmInputError(
                f"rename: {old_name!r} -> {new_name!r} is not a valid contig name"
            )

    out_fasta = Path(out_fasta)
    index_paths = [Path(f"{out_fasta}.fai"), Path(f"{out_fasta}.gzi")]
    # Data first, indexes last: a reader never sees an index without its data.
    with atomic_paths(out_fasta, *index_paths) as (tmp_fasta, tmp_fai, tmp_gzi):
        # The download goes inside the temporary folder too, so it is removed with it.
        raw = tmp_fasta.parent / f"{out_fasta.name}.source"
        fetch(
            source,
            raw,
            checksum=checksum,
            retries=retries,
            backoff_seconds=backoff_seconds,
            timeout_seconds=timeout_seconds,
            log=log,
        )
        with _numbered_lines(raw, source) as lines, pysam.BGZFile(str(tmp_fasta), "wb") as out:
            table = _convert(lines, out, source, contigs, rename, soft_mask, ambiguous_bases, log)
        raw.unlink()  # free the disk space before indexing
        # faidx writes <file>.fai and, for BGZF input, <file>.gzi beside the file it is given.
        pysam.faidx(str(tmp_fasta))
        if not (tmp_fai.is_file() and tmp_gzi.is_file()):
            raise RuntimeError(f"pysam.faidx did not write {tmp_fai.name} and {tmp_gzi.name}")
    log.info("wrote %s: %d contigs, %d bases", out_fasta, len(table), int(table["length"].sum()))
    return table


@contextlib.contextmanager
def _numbered_lines(path: Path, source: str) -> Iterator[Iterator[tuple[int, bytes]]]:
    """Open a plain, gzip or bgzip file; yield an iterator of (line number, line bytes)."""
    kind = compression(path)
    if kind in UNSUPPORTED_MAGIC.values():
        raise GenofmInputError(f"{source}: {kind}-compressed; give plain, gzip or bgzip FASTA")
    if kind == "plain":
        with open(path, "rb") as handle:
            yield enumerate(handle, start=1)
        return
    # gzip reads bgzip too: BGZF is a series of gzip members.
    with gzip.open(path, "rb") as handle:
        yield _checked_gunzip(enumerate(handle, start=1), source)


def _checked_gunzip(lines: Iterator[tuple[int, bytes]], source: str) -> Iterator[tuple[int, bytes]]:
    """Pass `lines` through, turning a corrupt or truncated gzip stream into GenofmInputError."""
    try:
        yield from lines
    except (OSError, EOFError, zlib.error) as err:
        raise GenofmInputError(f"{source}: cannot decompress: {err}") from err


def _convert(
    lines: Iterator[tuple[int, bytes]],
    out: BinaryIO,
    source: str,
    contigs: list[str] | None,
    rename: dict[str, str],
    soft_mask: str,
    ambiguous_bases: str,
    log: logging.Logger,
) -> pd.DataFrame:
    """Validate and rewrite the FASTA `lines` into `out`; return the per-contig table."""
    wanted = set(contigs) if contigs is not None else None
    seen_source: dict[str, int] = {}  # source name -> header line
    seen_output: dict[str, str] = {}  # output name -> source name
    rows: list[dict[str, object]] = []
    current: _Contig | None = None
    buffer = bytearray()  # sequence not yet written, always < _WRITE_BATCH + one line
    converted_total: Counter = Counter()
    converted_contigs = 0

    def fail(line_no: int, what: str, contig: str | None = None) -> GenofmInputError:
        contig = contig or (current.source_name if current is not None else None)
        where = f" contig {contig!r}:" if contig is not None else ""
        return GenofmInputError(f"{source}: line {line_no}:{where} {what}")

    def finish() -> None:
        nonlocal converted_contigs
        if current is None:
            return
        if current.length == 0:
            raise fail(current.header_line, "header has no sequence")
        if current.keep and current.converted:
            converted_total.update(current.converted)
            converted_contigs += 1
            log.info("%s: %s: %s turned into N", source, current.name, _describe_counts(current.converted))
        if current.keep:
            _write_wrapped(out, buffer, final=True)
            rows.append(
                {
                    "name": current.name,
                    "length": current.length,
                    "n_count": current.n_count,
                    "source_name": current.source_name,
                }
            )

    for line_no, raw_line in lines:
        line = raw_line.rstrip()  # trailing spaces, tabs, CR and LF are harmless
        if not line:
            continue  # blank lines carry nothing, anywhere in the file
        if line.startswith(b">"):
            finish()
            current = None  # so errors about this header do not name the previous contig
            fields = line[1:].split(maxsplit=1)
            if not fields:
                raise fail(line_no, "header line has no contig name")
            name = fields[0].decode("utf-8", errors="replace")
            if name in seen_source:
                raise fail(
                    line_no, f"duplicate name (first seen on line {seen_source[name]})", name
                )
            seen_source[name] = line_no
            keep = wanted is None or name in wanted
            new_name = rename.get(name, name)
            if keep and new_name in seen_output:
                raise fail(
                    line_no,
                    f"renamed to {new_name!r}, which contig {seen_output[new_name]!r} already has",
                    name,
                )
            current = _Contig(name, new_name, line_no, keep)
            if keep:
                seen_output[new_name] = name
                out.write(b">" + new_name.encode() + b"\n")
            continue
        if current is None:
            raise fail(line_no, "text before the first '>' header (is this a FASTA file?)")
        if ambiguous_bases == "to_n":
            ambiguous = line.translate(None, _NOT_IUPAC)
            if ambiguous:
                if current.converted is None:
                    current.converted = Counter()
                current.converted.update(ambiguous.decode("ascii"))
                line = line.translate(IUPAC_TO_N)
        bad = line.translate(None, VALID_BASES)  # C-speed check: whatever survives is invalid
        if bad:
            column = line.index(bad[:1]) + 1
            char = bad[:1].decode("latin-1")
            hint = ""
            if ambiguous_bases == "error" and char in IUPAC_AMBIGUITY:
                hint = " (an IUPAC ambiguity code: ambiguous_bases='to_n' turns these into N)"
            raise fail(line_no, f"invalid character {char!r} at column {column}{hint}")
        current.length += len(line)
        current.n_count += line.count(b"N") + line.count(b"n")
        if current.keep:
            buffer += line.upper() if soft_mask == "upper" else line
            if len(buffer) >= _WRITE_BATCH:
                _write_wrapped(out, buffer, final=False)
    finish()

    if not seen_source:
        raise GenofmInputError(f"{source}: no FASTA records (empty file?)")
    if converted_total:
        log.info(
            "%s: %d IUPAC ambiguity code(s) turned into N in %d contig(s) (ambiguous_bases: to_n): %s",
            source, sum(converted_total.values()), converted_contigs, _describe_counts(converted_total),
        )
    if wanted is not None:
        missing = [c for c in contigs if c not in seen_source]
        if missing:
            names = list(seen_source)
            shown = ", ".join(names[:10]) + (
                f", ... ({len(names)} in all)" if len(names) > 10 else ""
            )
            raise GenofmInputError(f"{source}: contigs not in the file: {missing}; it has: {shown}")
    unused = sorted(set(rename) - set(seen_source))
    if unused:
        log.warning("%s: rename names contigs not in the file: %s", source, unused)
    return pd.DataFrame(rows, columns=["name", "length", "n_count", "source_name"])


def _describe_counts(counts: Counter) -> str:
    """'3 R, 1 Y': upper case first, then lower case (soft-masked), each alphabetically."""
    order = sorted(counts, key=lambda code: (code.islower(), code))
    return ", ".join(f"{counts[code]} {code}" for code in order)


def _write_wrapped(out: BinaryIO, buffer: bytearray, *, final: bool) -> None:
    """Write `buffer` as LINE_WIDTH-wide lines; keep a partial last line unless `final`."""
    end = len(buffer) if final else len(buffer) - len(buffer) % LINE_WIDTH
    if end == 0:
        return
    lines = [bytes(buffer[i : i + LINE_WIDTH]) for i in range(0, end, LINE_WIDTH)]
    out.write(b"\n".join(lines) + b"\n")
    del buffer[:end]
