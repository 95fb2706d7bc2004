"""Gene annotation (GTF or GFF3): fetched like the reference, read through pyranges."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .download import fetch
from .errors import GenofmInputError

log = logging.getLogger(__name__)


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


def prepare_annotation(source: str, out: str | Path, checksum: str | None = None, **fetch_options) -> None:
    """Fetch (checksum verified) and store gzip-compressed at `out`, atomically."""
    with atomic_path(out) as tmp:
        raw = tmp.with_name(tmp.name + ".download")
        fetch(source, raw, checksum=checksum, **fetch_options)
        with open(raw, "rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        if compressed:
            raw.replace(tmp)
        else:
            with open(raw, "rb") as src, gzip.GzipFile(tmp, "wb", mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            raw.unlink()


def read_annotation(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """GTF/GFF3 as a DataFrame with Chromosome, Start (0-based), End, Strand, Feature,
    gene_id, transcript_id and gene_name (GFF3's ID/Parent are mapped onto those)."""
    import pyranges as pr

    path = Path(path)
    fmt = annotation_format(str(path), fmt)
    try:
        df = (pr.read_gtf(str(path)) if fmt == "gtf" else pr.read_gff3(str(path))).df
    except Exception as err:  # pyranges raises assorted parse errors
        raise GenofmInputError(f"{path}: cannot parse as {fmt.upper()}: {err}") from err
    if df.empty:
        raise GenofmInputError(f"{path}: the annotation has no features")
    for col in ("Chromosome", "Strand", "Feature"):
        df[col] = df[col].astype(str)
    if fmt == "gff3":
        df = _gff3_ids(df)
    for col in ("gene_id", "transcript_id", "gene_name"):
        if col not in df:
            df[col] = None
    return df


def _gff3_ids(df: pd.DataFrame) -> pd.DataFrame:
    """Give GFF3 features GTF-like gene_id/transcript_id from their ID/Parent links."""
    ids = df["ID"] if "ID" in df else pd.Series(None, index=df.index)
    parent = df["Parent"] if "Parent" in df else pd.Series(None, index=df.index)
    parent = parent.astype("string").str.split(",").str[0].str.replace(r"^\w+:", "", regex=True)
    ids = ids.astype("string").str.replace(r"^\w+:", "", regex=True)
    feature = df["Feature"].str.lower()
    is_gene = feature.isin(["gene", "pseudogene", "ncrna_gene"])
    is_tx = feature.isin(["mrna", "transcript", "lnc_rna", "ncrna", "mirna", "snrna"])
    df = df.copy()
    df["gene_id"] = np.where(is_gene, ids, np.where(is_tx, parent, None))
    df["transcript_id"] = np.where(is_tx, ids, np.where(is_gene, None, parent))
    tx_gene = dict(zip(df.loc[is_tx, "transcript_id"], df.loc[is_tx, "gene_id"]))
    child = ~is_gene & ~is_tx
    df.loc[child, "gene_id"] = df.loc[child, "transcript_id"].map(tx_gene)
    if "Name" in df:
        gene_names = dict(zip(df.loc[is_gene, "gene_id"], df.loc[is_gene, "Name"]))
        df["gene_name"] = df["gene_id"].map(gene_names)
    return df
