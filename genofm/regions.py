"""Region sets: intervals from BED files, annotation features or a genome tiling, with their
sequences, or the records of a FASTA file (a designed library: each record its own sequence),
written as parquet (chrom, start, end, strand, name, label, sequence).

Coordinates are 0-based half-open. Sequences on the '-' strand are reverse-complemented
(case kept), which is what `bedtools getfasta -s` gives; '.' means unstranded (forward).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam

from .atomic import atomic_path
from .config import LabelTableSettings, RegionSet
from .errors import GenofmInputError, dataclass_from_dict
from .files import open_text
from .sequence import reverse_complement

REGION_COLUMNS = ["chrom", "start", "end", "strand", "name", "label", "sequence"]
REGION_SCHEMA = pa.schema([
    ("chrom", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
    ("strand", pa.string()), ("name", pa.string()), ("label", pa.string()),
    ("sequence", pa.string()),
])

log = logging.getLogger(__name__)


def contig_lengths(fasta: str | Path) -> dict[str, int]:
    with pysam.FastaFile(str(fasta)) as fa:
        return dict(zip(fa.references, fa.lengths))


def default_name(chrom: str, start: int, end: int) -> str:
    """1-based inclusive 'chr:start-end', as region strings are written by convention."""
    return f"{chrom}:{start + 1}-{end}"


# --- BED ----------------------------------------------------------------------------------

def read_bed(path: str | Path, lengths: dict[str, int], label_column: int | None = None) -> pd.DataFrame:
    """Read and validate a BED file (3 to 6+ columns); errors name the file and line."""
    path = Path(path)
    rows = []
    opener = _open_text(path)
    with opener as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith(("#", "track ", "track\t", "browser ", "browser\t")):
                continue
            fields = line.split("\t")
            where = f"{path}, line {line_no}"
            if len(fields) < 3:
                raise GenofmInputError(f"{where}: a BED line needs at least 3 tab-separated columns, found {len(fields)}")
            chrom = fields[0]
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise GenofmInputError(f"{where}: start and end must be integers, got {fields[1]!r} and {fields[2]!r}") from None
            if start < 0 or start >= end:
                raise GenofmInputError(f"{where}: start ({start}) must be >= 0 and below end ({end})")
            if chrom not in lengths:
                known = ", ".join(list(lengths)[:5])
                raise GenofmInputError(f"{where}: contig {chrom!r} is not in the reference (it has {known}{', ...' if len(lengths) > 5 else ''})")
            if end > lengths[chrom]:
                raise GenofmInputError(f"{where}: interval {chrom}:{start}-{end} runs past the end of {chrom} (length {lengths[chrom]})")
            name = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else default_name(chrom, start, end)
            strand = fields[5] if len(fields) > 5 else "."
            if strand not in ("+", "-", "."):
                raise GenofmInputError(f"{where}: strand (column 6) must be '+', '-' or '.', got {strand!r}")
            label = None
            if label_column is not None:
                if len(fields) < label_column:
                    raise GenofmInputError(f"{where}: label column {label_column} is missing (the line has {len(fields)} columns)")
                label = fields[label_column - 1].strip()
                if label in ("", "."):
                    raise GenofmInputError(f"{where}: label column {label_column} is empty ({label!r}): every region "
                                           "of a labelled set needs its label (drop the line or give it one)")
            rows.append((chrom, start, end, strand, name, label))
    return pd.DataFrame(rows, columns=REGION_COLUMNS[:6])


def _open_text(path: Path):
    try:
        return open_text(path)
    except OSError as err:
        raise GenofmInputError(f"cannot read {path}: {err.strerror}") from err


# --- FASTA libraries ----------------------------------------------------------------------

def read_fasta_records(path: str | Path) -> Iterator[tuple[str, str, int]]:
    """(name, sequence, line of the header) of each record; the name is the header's first word.
    Only A C G T N (either case) are allowed: a library is a designed set, so anything else is
    an error naming the record and line, never a silent N."""
    path = Path(path)
    name, parts, header_line = None, [], 0
    with _open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(parts), header_line
                name, parts, header_line = (line[1:].split() or [""])[0], [], number
                if not name:
                    raise GenofmInputError(f"{path}, line {number}: a FASTA header without a name")
            elif line.strip():
                if name is None:
                    raise GenofmInputError(f"{path}, line {number}: sequence before the first '>' header "
                                           "(not a FASTA file?)")
                bad = set(line.strip().upper()) - set("ACGTN")
                if bad:
                    raise GenofmInputError(f"{path}, line {number} (record {name!r}): characters "
                                           f"{''.join(sorted(bad))!r} are not bases A C G T N")
                parts.append(line.strip())
    if name is not None:
        yield name, "".join(parts), header_line


def labels_from_table(names: pd.Series, tsv: str, column: str, source: str) -> pd.Series:
    """The label of each named region from a TSV keyed by region name (column `name`)."""
    table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    for wanted in ("name", column):
        if wanted not in table:
            raise GenofmInputError(f"{tsv}: no column {wanted!r} (the header has {', '.join(table.columns)}); the "
                                   "labels table needs the region names in 'name' and the labels in labels.column")
    repeated = table["name"].duplicated(keep=False)
    if repeated.any():
        lines = (np.flatnonzero(repeated.to_numpy())[:2] + 2).tolist()
        raise GenofmInputError(f"{tsv}: the region name {table['name'][repeated].iloc[0]!r} has several rows "
                               f"(lines {lines[0]} and {lines[1]})")
    if names.duplicated().any():
        raise GenofmInputError(f"{source}: the region name {names[names.duplicated()].iloc[0]!r} is used twice: "
                               "labels keyed by name need unique names")
    values = table.set_index("name")[column].replace("", np.nan)
    missing = ~names.isin(values.index)
    if missing.any():
        raise GenofmInputError(f"{tsv}: {int(missing.sum())} region(s) of {source} have no row, the first "
                               f"{names[missing].iloc[0]!r}")
    unused = int((~values.index.isin(names)).sum())
    if unused:
        log.info("%s: %d row(s) name no region of %s and are not used", tsv, unused, source)
    return pd.Series(values.loc[names.to_numpy()].to_numpy(), index=names.index, name="label")


def regions_from_fasta(path: str | Path, labels: str = "", label_field: str = "value",
                       set_name: str = "") -> pd.DataFrame:
    """One region per FASTA record, in file order: chrom and name are the record's name, start 0,
    end its length, strand +, the sequence as written; labels from the table (labels_from_table)
    if given."""
    rows, seen = [], {}
    for name, sequence, line in read_fasta_records(path):
        if name in seen:
            raise GenofmInputError(f"{path}, line {line}: record {name!r} appears twice (first at line {seen[name]})")
        if not sequence:
            raise GenofmInputError(f"{path}, line {line}: record {name!r} has no sequence")
        seen[name] = line
        rows.append((name, 0, len(sequence), "+", name, None, sequence))
    df = pd.DataFrame(rows, columns=REGION_COLUMNS)
    if labels and len(df):
        df["label"] = labels_from_table(df["name"], labels, label_field, f"region set {set_name!r} ({path})")
    return df


# --- annotation ---------------------------------------------------------------------------

def regions_from_annotation(annotation: pd.DataFrame, source: str, feature: str,
                            lengths: dict[str, int], upstream: int = 1000, downstream: int = 200,
                            merge_overlapping: bool = True) -> pd.DataFrame:
    """Intervals of one feature kind; `source` names the annotation file in errors."""
    import pyranges as pr

    ann = annotation[annotation["Chromosome"].isin(lengths)]
    unknown = sorted(set(annotation["Chromosome"]) - set(lengths))
    if unknown:
        log.warning("%s: %d feature(s) on contigs absent from the reference are left out: %s",
                    source, int((~annotation["Chromosome"].isin(lengths)).sum()), ", ".join(unknown[:5]))
    kinds = ann["Feature"].str.lower()

    def need(column: str, rows: pd.DataFrame) -> None:
        if rows[column].isna().all():
            raise GenofmInputError(f"{source}: the {feature} regions need the attribute {column!r}, "
                                   f"which no {'/'.join(sorted(set(rows['Feature'])))} feature has")

    beyond = ann["End"] > ann["Chromosome"].map(lengths)
    if beyond.any():
        row = ann[beyond].iloc[0]
        raise GenofmInputError(
            f"{source}: {row['Feature']} {_names(ann[beyond].head(1))[0] or ''} at {row['Chromosome']}:"
            f"{row['Start'] + 1}-{row['End']} runs past the end of {row['Chromosome']} "
            f"(length {lengths[row['Chromosome']]}); {int(beyond.sum())} such feature(s): is the annotation "
            f"for this assembly?")
    if feature == "promoter":
        tx = ann[ann["is_transcript"]]
        if tx.empty:
            tx = ann[ann["is_gene"]]
        if tx.empty:
            raise GenofmInputError(f"{source}: no transcript, mRNA or gene features to take TSSs from")
        plus = tx["Strand"] != "-"
        tss = np.where(plus, tx["Start"], tx["End"] - 1)
        start = np.where(plus, tss - upstream, tss - downstream + 1)
        end = np.where(plus, tss + downstream, tss + upstream + 1)
        names = _names(tx)
        df = pd.DataFrame({"chrom": tx["Chromosome"].to_numpy(), "start": start, "end": end,
                           "strand": tx["Strand"].to_numpy(), "name": names})
        return _clip(df, lengths, source).drop_duplicates(["chrom", "start", "end", "strand"])

    if feature == "intergenic":
        genes = ann[ann["is_gene"]]
        if genes.empty:
            raise GenofmInputError(f"{source}: no gene features to take intergenic space between")
        whole = pr.PyRanges(pd.DataFrame({"Chromosome": list(lengths), "Start": 0, "End": list(lengths.values())}))
        covered = pr.PyRanges(genes[["Chromosome", "Start", "End"]].copy()).merge()
        gaps = whole.subtract(covered).df
        return pd.DataFrame({"chrom": gaps["Chromosome"].astype(str), "start": gaps["Start"].astype(np.int64),
                             "end": gaps["End"].astype(np.int64), "strand": ".", "name": None})

    if feature == "intron":
        exons = ann[kinds == "exon"]
        if exons.empty:
            raise GenofmInputError(f"{source}: no exon features to take introns between")
        need("transcript_id", exons)
        rows = []
        for tx_id, group in exons.dropna(subset=["transcript_id"]).groupby("transcript_id", sort=False):
            group = group.sort_values("Start")
            starts, ends = group["End"].to_numpy()[:-1], group["Start"].to_numpy()[1:]
            for s, e in zip(starts, ends):
                if e > s:
                    rows.append((group["Chromosome"].iat[0], s, e, group["Strand"].iat[0], tx_id))
        df = pd.DataFrame(rows, columns=["chrom", "start", "end", "strand", "name"])
    else:
        wanted = {"exon": ["exon"], "cds": ["cds"], "gene": ["gene"],
                  "five_prime_utr": ["five_prime_utr", "5utr"], "three_prime_utr": ["three_prime_utr", "3utr"]}[feature]
        rows = ann[kinds.isin(wanted)]
        if rows.empty:
            raise GenofmInputError(f"{source}: no {'/'.join(wanted)} features")
        df = pd.DataFrame({"chrom": rows["Chromosome"].to_numpy(), "start": rows["Start"].to_numpy(),
                           "end": rows["End"].to_numpy(), "strand": rows["Strand"].to_numpy(),
                           "name": _names(rows)})
    if merge_overlapping and not df.empty:
        merged = pr.PyRanges(df.rename(columns={"chrom": "Chromosome", "start": "Start", "end": "End",
                                                "strand": "Strand"})).merge(strand=True).df
        df = pd.DataFrame({"chrom": merged["Chromosome"].astype(str), "start": merged["Start"],
                           "end": merged["End"], "strand": merged["Strand"].astype(str), "name": None})
    return df.drop_duplicates(["chrom", "start", "end", "strand"])


def _names(rows: pd.DataFrame) -> np.ndarray:
    """Per row: gene_name, else gene_id, else transcript_id, else None."""
    names = pd.Series(None, index=rows.index, dtype=object)
    for column in ("transcript_id", "gene_id", "gene_name"):
        if column in rows:
            names = rows[column].astype(object).where(rows[column].notna(), names)
    return names.to_numpy()


def _clip(df: pd.DataFrame, lengths: dict[str, int], source: str) -> pd.DataFrame:
    limit = df["chrom"].map(lengths)
    clipped = (df["start"] < 0) | (df["end"] > limit)
    if clipped.any():
        log.info("%s: %d window(s) clipped at contig ends", source, int(clipped.sum()))
    df = df.assign(start=df["start"].clip(lower=0), end=np.minimum(df["end"], limit))
    return df[df["end"] > df["start"]]


# --- tiling -------------------------------------------------------------------------------

def genome_blocks(length: int, block: int, every: int, part: str) -> list[tuple[int, int]]:
    """0-based spans of a contig cut into blocks of `block` bases, of which every `every`-th
    (the last of each run of `every`) is held out: part "train", "held_out" or "all"."""
    if part == "all" or block <= 0:
        return [(0, length)]
    spans = [(s, min(s + block, length)) for s in range(0, length, block)]
    held = [i % every == every - 1 for i in range(len(spans))]
    return [span for span, h in zip(spans, held) if h == (part == "held_out")]


TILING_BLOCK = 1 << 24  # bases of a contig read at a time while tiling


def tile_genome(fasta: str | Path, window: int, stride: int, max_n_fraction: float,
                contigs: Iterable[str] = (), block: int = 0, every: int = 10, part: str = "all") -> pd.DataFrame:
    """Full windows along each contig (or along each of its train or held-out blocks, see
    genome_blocks); windows with too many N are left out (and logged)."""
    rows = []
    n_skipped = 0
    wanted = set(contigs)
    with pysam.FastaFile(str(fasta)) as fa:
        for chrom, length in zip(fa.references, fa.lengths):
            if wanted and chrom not in wanted:
                continue
            spans = genome_blocks(length, block, every, part)
            starts = np.concatenate([np.arange(s, e - window + 1, stride, dtype=np.int64) for s, e in spans]
                                    or [np.zeros(0, dtype=np.int64)])
            if starts.size == 0:
                log.info("tiling: %s (%d bp, %s) holds no whole window (%d)", chrom, length,
                         "all of it" if part == "all" else f"{part} blocks", window)
                continue
            for lo in range(0, length, TILING_BLOCK):  # a block at a time: memory bounded on any chromosome
                block_starts = starts[(starts >= lo) & (starts < lo + TILING_BLOCK)]
                if not block_starts.size:
                    continue
                piece = fa.fetch(chrom, lo, int(block_starts[-1]) + window).upper().encode()
                n_cum = np.concatenate([[0], np.cumsum(np.frombuffer(piece, dtype=np.uint8) == ord("N"),
                                                       dtype=np.int32)])
                rel = block_starts - lo
                keep = (n_cum[rel + window] - n_cum[rel]) / window <= max_n_fraction
                n_skipped += int((~keep).sum())
                rows += [(chrom, int(s), int(s) + window) for s in block_starts[keep]]
    if n_skipped:
        log.info("tiling: %d window(s) with more than %.0f%% N left out", n_skipped, 100 * max_n_fraction)
    df = pd.DataFrame(rows, columns=["chrom", "start", "end"])
    df["strand"] = "."
    df["name"] = None
    return df


# --- sequences and parquet ----------------------------------------------------------------

def restrict_contigs(df: pd.DataFrame, contigs: Iterable[str]) -> pd.DataFrame:
    contigs = list(contigs)
    return df[df["chrom"].isin(contigs)] if contigs else df


def finish(df: pd.DataFrame, label: str | None = None) -> pd.DataFrame:
    """Sort, fill default names and the constant label: the regions without sequences."""
    df = df.copy()
    if "label" not in df:
        df["label"] = None
    if label is not None:
        df["label"] = label
    missing = df["name"].isna()
    df.loc[missing, "name"] = [default_name(c, s, e) for c, s, e in
                               zip(df.loc[missing, "chrom"], df.loc[missing, "start"], df.loc[missing, "end"])]
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    return df.sort_values(["chrom", "start", "end", "strand"], kind="stable").reset_index(drop=True)


def iter_sequences(df: pd.DataFrame, fasta: str | Path) -> Iterator[str]:
    with pysam.FastaFile(str(fasta)) as fa:
        for chrom, start, end, strand in zip(df["chrom"], df["start"], df["end"], df["strand"]):
            seq = fa.fetch(chrom, int(start), int(end))
            yield reverse_complement(seq) if strand == "-" else seq


def write_regions(df: pd.DataFrame, fasta: str | Path, out: str | Path, set_name: str = "",
                  chunk_rows: int = 50_000, chunk_bases: int = 1 << 24) -> int:
    """Attach sequences chunk by chunk (at most chunk_rows regions and, past the first region,
    chunk_bases bases: memory stays bounded whatever the genome and window) and write the
    parquet atomically; returns row count."""
    if df.empty:
        raise GenofmInputError(f"region set {set_name!r} is empty: no region passed its filters")
    lengths = (df["end"] - df["start"]).to_numpy()
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, REGION_SCHEMA) as writer:
            lo = 0
            while lo < len(df):
                fits = int(np.searchsorted(np.cumsum(lengths[lo:lo + chunk_rows]), chunk_bases, side="right"))
                chunk = df.iloc[lo:lo + max(1, fits)]
                lo += len(chunk)
                table = pd.DataFrame({c: chunk[c] for c in REGION_COLUMNS[:6]})
                table["sequence"] = (chunk["sequence"].tolist() if "sequence" in chunk  # a FASTA library's own
                                     else list(iter_sequences(chunk, fasta)))
                table["label"] = table["label"].astype(object).where(table["label"].notna(), None)
                writer.write_table(pa.Table.from_pandas(table, schema=REGION_SCHEMA, preserve_index=False))
    return len(df)


def read_regions(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except (OSError, pa.ArrowInvalid) as err:
        raise GenofmInputError(f"{path}: cannot read region parquet: {err}") from err


def build_region_set(spec: dict | RegionSet, fasta: str | Path, annotation: str | Path | None = None,
                     annotation_format: str = "auto", set_name: str = "",
                     rename: dict[str, str] | None = None) -> pd.DataFrame:
    """The regions (no sequences yet, but for a FASTA library) of one configured region set
    (genofm.config.RegionSet).
    `rename` is the genome's contig renaming, applied to the annotation's contigs too."""
    s = spec if isinstance(spec, RegionSet) else dataclass_from_dict(RegionSet, spec, f"region set {set_name!r}")
    lengths = contig_lengths(fasta)
    if s.type == "bed":
        if not s.bed:
            raise GenofmInputError(f"region set {set_name!r}: type bed needs a 'bed' path")
        df = read_bed(s.bed, lengths, s.label_column)
    elif s.type == "annotation":
        if not annotation:
            raise GenofmInputError(f"region set {set_name!r}: type annotation needs the genome's annotation.source")
        from .annotation import read_annotation

        features = read_annotation(annotation, annotation_format)
        if rename:
            features["Chromosome"] = features["Chromosome"].replace(rename)
        df = regions_from_annotation(features, str(annotation), s.feature, lengths, upstream=s.upstream,
                                     downstream=s.downstream, merge_overlapping=s.merge_overlapping)
        short = (df["end"] - df["start"]) < s.min_length
        if short.any():
            log.info("region set %s: %d feature(s) shorter than min_length left out", set_name, int(short.sum()))
            df = df[~short]
    elif s.type == "fasta":
        if not s.fasta:
            raise GenofmInputError(f"region set {set_name!r}: type fasta needs a 'fasta' path")
        labels = (dataclass_from_dict(LabelTableSettings, s.labels, f"region set {set_name!r} labels")
                  if isinstance(s.labels, dict) else s.labels)
        df = regions_from_fasta(s.fasta, labels.tsv, labels.column, set_name)
        if s.label is not None:
            df["label"] = s.label
        if df.empty:
            raise GenofmInputError(f"region set {set_name!r} is empty: {s.fasta} holds no FASTA record")
        log.info("region set %s: %d sequences of %s, %d bp", set_name, len(df), s.fasta, int(df["end"].sum()))
        return df  # the library's own order
    elif s.type == "tiling":
        df = tile_genome(fasta, s.window, s.stride, s.max_n_fraction, s.contigs, s.block, s.held_out_every,
                         s.blocks)
    else:
        raise GenofmInputError(f"region set {set_name!r}: unknown type {s.type!r}")
    df = finish(restrict_contigs(df, s.contigs), s.label)
    if df.empty:
        source = {"bed": s.bed, "annotation": f"{s.feature} features of {annotation}",
                  "tiling": f"tiling of {fasta}"}[s.type]
        raise GenofmInputError(f"region set {set_name!r} is empty: nothing came out of {source}"
                               f"{' on contigs ' + ', '.join(s.contigs) if s.contigs else ''}")
    log.info("region set %s: %d regions, %d bp", set_name, len(df), int((df["end"] - df["start"]).sum()))
    return df


def merged_intervals(df: pd.DataFrame) -> list[tuple[int, int]]:
    """(start, end) of the union of the regions of one contig, touching ones joined."""
    merged: list[list[int]] = []
    for start, end in sorted(zip(df["start"].astype(int), df["end"].astype(int))):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]
