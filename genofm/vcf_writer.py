"""The one VCF writer: new VCFs (the demo's variants, labelled SNVs) and the scorer's
annotated copy of an input VCF, formatted here as text.

Written as text, not through pysam's VariantHeader/VariantRecord API, which was tried
(tests/benchmarks/vcf_writer_benchmark.py; pysam 0.24.1, 200k records) and is not
byte-identical: its headers gain a ##FILTER=<ID=PASS> line and its INFO floats are float32
with 6 significant digits instead of 5 (1.98067e-05 for 1.9807e-05). It is also about 4x
slower for a new VCF; for the annotated copy, where reading the input dominates, it is as fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pysam

from .errors import GenofmInputError

VCF_VERSION = "VCFv4.2"
COLUMNS_LINE = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
# A record of a new VCF: CHROM, POS (1-based), ID, REF, ALT and the INFO values by key.
Record = tuple[str, int, str, str, str, Mapping[str, object]]


def header_value(text) -> str:
    """A quoted header value (Description="..."), backslashes and quotes escaped."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def info_declaration(key: str, number: str, type_: str, description: str) -> str:
    return f"##INFO=<ID={key},Number={number},Type={type_},Description={header_value(description)}>"


def info_column(entries: Iterable[str]) -> str:
    """The INFO column from its `KEY=value` (or flag) entries; "." when there are none."""
    return ";".join(entries) or "."


def vcf_header(meta: Iterable[tuple[str, str]], contigs: Iterable[tuple[str, int]],
               info: Iterable[tuple[str, str, str, str]]) -> str:
    """##fileformat, the `meta` lines (##key=value) in order, ##contig lines (name, length),
    ##INFO declarations (key, Number, Type, Description) and the column line."""
    lines = [f"##fileformat={VCF_VERSION}"]
    lines += [f"##{key}={value}" for key, value in meta]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in contigs]
    lines += [info_declaration(*declaration) for declaration in info]
    lines.append(COLUMNS_LINE)
    return "\n".join(lines) + "\n"


def record_line(chrom: str, pos: int, vcf_id: str, ref: str, alt: str, values: Mapping[str, object]) -> str:
    """One record of a new VCF (POS 1-based), QUAL '.', FILTER PASS; INFO values that are ""
    or None are left out."""
    entries = (f"{key}={value}" for key, value in values.items() if value is not None and value != "")
    return f"{chrom}\t{pos}\t{vcf_id}\t{ref}\t{alt}\t.\tPASS\t{info_column(entries)}\n"


def vcf_text(meta: Iterable[tuple[str, str]], contigs: Iterable[tuple[str, int]],
             info: Iterable[tuple[str, str, str, str]], records: Iterable[Record]) -> str:
    """A whole VCF: vcf_header, then a record_line per record."""
    return vcf_header(meta, contigs, info) + "".join(record_line(*record) for record in records)


def write_vcf(path: str | Path, meta, contigs, info, records: Iterable[Record]) -> None:
    """vcf_text written to `path` (plain text)."""
    Path(path).write_text(vcf_text(meta, contigs, info, records))


# --- the scorer's annotated copy ------------------------------------------------------------

def annotated_header(header_text: str, fields, meta: dict[str, dict]) -> str:
    """The input header with the INFO declarations of `fields` (vcf.InfoField: Number=A) and
    ##name=<Key="value",...> lines of `meta` before #CHROM. Existing declarations of the same
    keys (a VCF scored before) and meta lines of the same names are replaced."""
    keys = {f.key for f in fields}
    lines = [line for line in header_text.rstrip("\n").split("\n")
             if not any(line.startswith(f"##INFO=<ID={k},") for k in keys)]
    lines = [line for line in lines if not line.startswith(tuple(f"##{name}=" for name in meta))]
    added = [info_declaration(f.key, "A", f.type, f.description) for f in fields]
    for name, values in meta.items():
        inner = ",".join(f"{k}={header_value(v)}" for k, v in values.items())
        added.append(f"##{name}=<{inner}>")
    return "\n".join(lines[:-1] + added + lines[-1:]) + "\n"


def format_score(value) -> str:
    if value is None or value != value:  # None or NaN
        return "."
    return f"{value:.5g}"


def annotated_line(record: pysam.VariantRecord, alleles, fields) -> str:
    """The record's VCF line with the INFO fields of `fields` (one value per ALT allele:
    its status, or its score) appended; a record without ALT gets its status (NO_ALT) only."""
    columns = str(record).rstrip("\n").split("\t")
    keep = [kv for kv in columns[7].split(";") if kv != "." and kv.split("=", 1)[0] not in {f.key for f in fields}]
    for f in fields:
        if not f.score:  # every record carries its status, a record without ALT (NO_ALT) too
            keep.append(f"{f.key}={','.join(a.status for a in alleles)}")
        elif record.alts:
            keep.append(f"{f.key}={','.join(format_score(a.scores.get(f.score)) for a in alleles)}")
    columns[7] = info_column(keep)
    return "\t".join(columns) + "\n"


def write_bgzip_vcf_index(path: Path) -> Path:
    """Tabix-index a bgzip VCF; returns the .tbi path."""
    try:
        pysam.tabix_index(str(path), preset="vcf", force=True)
    except (OSError, ValueError) as err:
        raise GenofmInputError(f"cannot index the scored VCF {path}: {err}") from err
    return Path(str(path) + ".tbi")
