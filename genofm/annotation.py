"""Gene annotation (GTF or GFF3): fetched like the reference, read through pyranges."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GenofmInputError
from .files import open_text

log = logging.getLogger(__name__)

# GFF3 features that belong to a transcript and so must name it in Parent
_GFF3_CHILD_FEATURES = {"exon", "cds", "five_prime_utr", "three_prime_utr", "utr", "5utr", "3utr",
                        "start_codon", "stop_codon"}
# GFF3 features that are genes: named by their ID
_GFF3_GENE_FEATURES = {"gene", "pseudogene", "ncrna_gene"}
_GTF_ATTRIBUTE = {name: re.compile(rf'(?:^|;)\s*{name}\s+(?:"([^"]*)"|([^;\s]+))')
                  for name in ("gene_id", "transcript_id")}


def annotation_format(source: str, fmt: str = "auto") -> str:
    """'gtf' or 'gff3': as configured, or by the file name."""
    if fmt != "auto":
        return fmt
    name = source.lower().split("?")[0].removesuffix(".gz")
    if name.endswith(".gtf"):
        return "gtf"
    if name.endswith((".gff3", ".gff")):
        return "gff3"
    raise GenofmInputError(f"{source}: cannot tell GTF from GFF3 by the file name; set annotation.format")


def read_annotation(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """GTF/GFF3 as a DataFrame with Chromosome, Start (0-based), End, Strand, Feature,
    gene_id, transcript_id, gene_name and the roles is_gene / is_transcript (for GFF3 taken
    from the ID/Parent links, so ncRNA genes, pseudogenes and lnc_RNAs count too)."""
    import pyranges as pr

    path = Path(path)
    fmt = annotation_format(str(path), fmt)
    check_lines(path, fmt)
    try:
        df = (pr.read_gtf(str(path)) if fmt == "gtf" else pr.read_gff3(str(path))).df
    except Exception as err:  # pyranges raises assorted parse errors
        raise GenofmInputError(f"{path}: cannot parse as {fmt.upper()}: {err}") from err
    if df.empty:
        raise GenofmInputError(f"{path}: the annotation has no features")
    for col in ("Chromosome", "Strand", "Feature"):
        df[col] = df[col].astype(str)
    if fmt == "gff3":
        df = _gff3_roles(df, str(path))
    else:
        feature = df["Feature"].str.lower()
        df["is_gene"], df["is_transcript"] = feature == "gene", feature == "transcript"
    for col in ("gene_id", "transcript_id", "gene_name"):
        if col not in df:
            df[col] = None
    return df


def check_lines(path: Path, fmt: str | None = None) -> None:
    """The 9 columns, integer 1-based start <= end and strand of every feature line, so a
    broken line is reported with its number (pyranges would not say where).

    With fmt "gtf", every line needs a gene_id and, except gene lines, a transcript_id
    (GTF2.2). With "gff3", transcript parts (exon, CDS, UTRs, start/stop codons) need a
    Parent, every Parent must name an ID in the file, and genes need an ID; other features without a Parent
    (gene, region, a lone mRNA) are top-level (see _gff3_roles for transcripts)."""
    ids: set[str] = set()
    parents: dict[str, int] = {}  # Parent value -> first line naming it
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.startswith("##FASTA"):
                break
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            where = f"{path}, line {line_no}"
            if len(fields) < 9:
                raise GenofmInputError(f"{where}: a feature line needs 9 tab-separated columns, found {len(fields)}")
            try:
                start, end = int(fields[3]), int(fields[4])
            except ValueError:
                raise GenofmInputError(f"{where}: start and end must be integers, got {fields[3]!r} and {fields[4]!r}") from None
            if not 1 <= start <= end:
                raise GenofmInputError(f"{where}: start ({start}) must be >= 1 and <= end ({end}) (1-based, inclusive)")
            if fields[6] not in ("+", "-", ".", "?"):
                raise GenofmInputError(f"{where}: strand (column 7) must be '+', '-', '.' or '?', got {fields[6]!r}")
            if fmt == "gtf":
                _check_gtf_attributes(fields, where)
            elif fmt == "gff3":
                attributes = {key.strip(): value for key, value in
                              (item.split("=", 1) for item in fields[8].split(";") if "=" in item)}
                if attributes.get("ID", "").strip():
                    ids.add(attributes["ID"].strip())
                elif fields[2].lower() in _GFF3_GENE_FEATURES:
                    raise GenofmInputError(f"{where}: {fields[2]} feature has no ID attribute (genofm names a "
                                           "gene's regions by it, and its transcripts name it in Parent)")
                parent = attributes.get("Parent", "").strip()
                if parent:
                    for value in parent.split(","):
                        parents.setdefault(value.strip(), line_no)
                elif fields[2].lower() in _GFF3_CHILD_FEATURES:
                    raise GenofmInputError(f"{where}: {fields[2]} feature has no Parent attribute "
                                           f"(the transcript it belongs to)")
    for value, line_no in parents.items():
        if value not in ids:
            raise GenofmInputError(f"{path}, line {line_no}: Parent {value!r} names no feature's ID in the file")


def _check_gtf_attributes(fields: list[str], where: str) -> None:
    needed = ("gene_id",) if fields[2].lower() == "gene" else ("gene_id", "transcript_id")
    for name in needed:
        match = _GTF_ATTRIBUTE[name].search(fields[8])
        if not match or not (match.group(1) or match.group(2)):
            raise GenofmInputError(f"{where}: {fields[2]} feature has no {name} attribute "
                                   f"(GTF needs it on every {'line' if name == 'gene_id' else 'non-gene line'})")


def _gff3_roles(df: pd.DataFrame, source: str = "annotation") -> pd.DataFrame:
    """GTF-like gene_id/transcript_id and roles for GFF3, from the ID/Parent links:
    a transcript is what exons hang from, a gene is what transcripts hang from. A transcript
    without a Parent (no gene above it) is taken as its own gene: gene_id is its ID (logged)."""
    def clean(column: str) -> pd.Series:
        if column not in df:
            return pd.Series(None, index=df.index, dtype="string")
        values = df[column].astype("string").str.split(",").str[0]
        return values.str.replace(r"^\w+:", "", regex=True)  # Ensembl's "gene:", "transcript:"

    ids, parent = clean("ID"), clean("Parent")
    feature = df["Feature"].str.lower()
    exon_parents = set(parent[feature == "exon"].dropna())
    is_tx = ids.isin(exon_parents).fillna(False) | feature.isin(["mrna", "transcript"])
    tx_parents = set(parent[is_tx].dropna())
    is_gene = (ids.isin(tx_parents).fillna(False) | feature.isin(_GFF3_GENE_FEATURES)) & ~is_tx
    df = df.copy()
    df["is_gene"], df["is_transcript"] = is_gene.to_numpy(bool), is_tx.to_numpy(bool)
    df["transcript_id"] = np.where(is_tx, ids, np.where(is_gene, None, parent))
    orphan = is_tx & parent.isna().to_numpy(bool) & ids.notna().to_numpy(bool)
    if orphan.any():
        log.info("%s: %d transcript(s) without a Parent gene, each taken as its own gene (gene_id = its ID), "
                 "e.g. %s", source, int(orphan.sum()), ", ".join(ids[orphan].head(3)))
    tx_gene = dict(zip(ids[is_tx], parent[is_tx].fillna(ids[is_tx])))
    df["gene_id"] = np.where(is_gene, ids, df["transcript_id"].map(tx_gene))
    if "Name" in df:
        gene_names = dict(zip(ids[is_gene], df.loc[is_gene, "Name"]))
        df["gene_name"] = df["gene_id"].map(gene_names)
    return df
