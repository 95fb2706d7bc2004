"""Labelled SNVs from a genome annotation: the true consequence of every possible SNV in a
coding sequence (synonymous, missense, stop-gained), plus intergenic SNVs.

Coding sequences come from a GenBank flat file (`read_genbank_cds`): the benchmark genome
(M. tuberculosis H37Rv) ships as GenBank. Codons are translated with the table the CDS
names (/transl_table; bacteria use table 11, whose amino acids are the standard code's).
Codons are left out where the answer would be ambiguous: the start and stop codons, codons
with a base in more than one CDS (overlapping genes), and whole CDS that are pseudogenes,
joined, partial, not a multiple of 3 or with an internal stop.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GenofmInputError
from .regions import reverse_complement

log = logging.getLogger(__name__)

BASES = "TCAG"
# The standard genetic code in TCAG order (NCBI table 1); table 11 has the same amino acids
# and differs only in which codons may start a protein, and start codons are skipped here.
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODE = {a + b + c: _AMINO[16 * i + 4 * j + k]
        for i, a in enumerate(BASES) for j, b in enumerate(BASES) for k, c in enumerate(BASES)}
CODONS = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"]  # the order of codon arrays
CODON_INDEX = {codon: i for i, codon in enumerate(CODONS)}
AMINO_ACID_CODONS = {amino: [CODON_INDEX[c] for c in CODONS if CODE[c] == amino] for amino in sorted(set(_AMINO))}
SUPPORTED_TABLES = {1, 11}
CLASSES = ("synonymous", "missense", "stop_gained", "intergenic")


@dataclass
class Cds:
    start: int  # 0-based, half-open
    end: int
    strand: str  # + or -
    name: str
    table: int = 11
    pseudo: bool = False
    translation: str = ""  # the annotated protein (/translation), when given


_LOCATION = re.compile(r"^(complement\()?(\d+)\.\.(\d+)\)?$")


def read_genbank_cds(path: str | Path) -> tuple[list[Cds], list[tuple[int, int]], str]:
    """CDS features of a one-record GenBank file, every annotated feature's span (to find
    intergenic bases) and the record's accession.version. CDS with locations other than
    `a..b` / `complement(a..b)` (joins, partial `<`/`>` ends) are counted and left out."""
    path = Path(path)
    cds: list[Cds] = []
    spans: list[tuple[int, int]] = []
    skipped = 0
    accession = ""
    feature, location, qualifiers, line_no = None, "", [], 0

    def flush():
        nonlocal skipped
        if feature is None or feature == "source":
            return
        numbers = [int(n) for n in re.findall(r"\d+", location)]
        if numbers:
            spans.append((min(numbers) - 1, max(numbers)))
        if feature != "CDS":
            return
        match = _LOCATION.match(location.replace(" ", ""))
        if not match:
            skipped += 1
            return
        text = " ".join(qualifiers)
        name = re.search(r'/locus_tag="([^"]+)"', text) or re.search(r'/gene="([^"]+)"', text)
        table = re.search(r"/transl_table=(\d+)", text)
        start, end = int(match.group(2)) - 1, int(match.group(3))
        if end <= start:
            raise GenofmInputError(f"{path}: line {line_no}: CDS location {location!r} ends before it starts")
        protein = re.search(r'/translation="([^"]+)"', text)
        cds.append(Cds(start, end, "-" if match.group(1) else "+", name.group(1) if name else f"cds_{len(cds) + 1}",
                       int(table.group(1)) if table else 11, "/pseudo" in text,
                       protein.group(1).replace(" ", "") if protein else ""))

    in_features = False
    with open(path) as handle:
        for line_no, line in enumerate(handle, 1):
            if line.startswith("VERSION"):
                accession = line.split()[1]
            if line.startswith("FEATURES"):
                in_features = True
                continue
            if not in_features:
                continue
            if line.startswith("ORIGIN") or line.startswith("//") or line.startswith("CONTIG"):
                break
            if len(line) > 5 and line[5] != " ":  # a new feature key
                flush()
                feature, location, qualifiers = line[5:21].strip(), line[21:].strip(), []
            elif line.strip().startswith("/") or qualifiers:
                qualifiers.append(line.strip())
            else:  # location continued over several lines
                location += line.strip()
        flush()
    if not in_features:
        raise GenofmInputError(f"{path}: no FEATURES section: not a GenBank flat file?")
    if not cds:
        raise GenofmInputError(f"{path}: no CDS features")
    log.info("%s: %d CDS (%d with joined or partial locations left out), %d features", path, len(cds), skipped,
             len(spans))
    return cds, spans, accession


def coding_snvs(genome: str, cds: list[Cds], within: list[tuple[int, int]] | None = None) -> pd.DataFrame:
    """Every SNV of every usable codon of the CDS lying wholly inside `within` (0-based
    intervals; all CDS when None): pos (0-based), ref, alt, class, gene, codon_position.
    REF/ALT are on the + strand, as a VCF writes them."""
    coverage = np.zeros(len(genome) + 1, dtype=np.int32)
    for c in cds:
        if c.end > len(genome):
            raise GenofmInputError(f"CDS {c.name} ({c.start + 1}..{c.end}) runs past the end of the "
                                   f"{len(genome):,} bp sequence: annotation of another assembly?")
        coverage[c.start] += 1
        coverage[c.end] -= 1
    depth = np.cumsum(coverage)[:-1]  # CDS covering each base
    counts = {"pseudogene": 0, "unsupported table": 0, "length not a multiple of 3": 0,
              "internal stop": 0, "outside the intervals": 0}
    rows = []
    for c in cds:
        if c.pseudo:
            counts["pseudogene"] += 1
            continue
        if c.table not in SUPPORTED_TABLES:
            counts["unsupported table"] += 1
            continue
        if (c.end - c.start) % 3:
            counts["length not a multiple of 3"] += 1
            continue
        if within is not None and not any(s <= c.start and c.end <= e for s, e in within):
            counts["outside the intervals"] += 1
            continue
        plus = genome[c.start:c.end].upper()
        coding = plus if c.strand == "+" else reverse_complement(plus)
        codons = [coding[i:i + 3] for i in range(0, len(coding), 3)]
        if any(CODE.get(codon, "X") == "*" for codon in codons[1:-1]):
            counts["internal stop"] += 1
            continue
        for index in range(1, len(codons) - 1):  # no start, no stop codon
            codon = codons[index]
            if codon not in CODE:
                continue  # an N or other ambiguity code
            for offset in range(3):
                # genome position of this codon base (on the + strand)
                pos = c.start + 3 * index + offset if c.strand == "+" else c.end - 1 - (3 * index + offset)
                if depth[pos] != 1:
                    continue  # overlapping genes: the consequence is not one
                for base in "ACGT":
                    if base == codon[offset]:
                        continue
                    mutant = codon[:offset] + base + codon[offset + 1:]
                    amino, new = CODE[codon], CODE[mutant]
                    kind = "synonymous" if new == amino else "stop_gained" if new == "*" else "missense"
                    ref, alt = (codon[offset], base) if c.strand == "+" else (
                        reverse_complement(codon[offset]), reverse_complement(base))
                    rows.append((pos, ref, alt, kind, c.name, offset + 1))
    left_out = ", ".join(f"{n} {why}" for why, n in counts.items() if n)
    log.info("coding SNVs: %d from %d CDS%s", len(rows), len(cds) - sum(counts.values()),
             f" ({left_out} left out)" if left_out else "")
    return pd.DataFrame(rows, columns=["pos", "ref", "alt", "class", "gene", "codon_position"])


def intergenic_positions(genome: str, spans: list[tuple[int, int]], within: list[tuple[int, int]] | None = None,
                         margin: int = 0) -> np.ndarray:
    """0-based positions with an A/C/G/T base outside every annotated feature (± margin)."""
    covered = np.zeros(len(genome) + 1, dtype=np.int32)
    for s, e in spans:
        covered[max(0, s - margin)] += 1
        covered[min(len(genome), e + margin)] -= 1
    free = np.cumsum(covered)[:-1] == 0
    if within is not None:
        inside = np.zeros(len(genome) + 1, dtype=np.int32)
        for s, e in within:
            inside[s] += 1
            inside[e] -= 1
        free &= np.cumsum(inside)[:-1] > 0
    acgt = np.frombuffer(genome.upper().encode(), dtype=np.uint8)
    free &= np.isin(acgt, np.frombuffer(b"ACGT", dtype=np.uint8))
    return np.flatnonzero(free)


def labelled_snv_set(genome: str, cds: list[Cds], spans: list[tuple[int, int]], per_class: int, seed: int,
                     within: list[tuple[int, int]] | None = None) -> pd.DataFrame:
    """A random sample of `per_class` SNVs of each class (all of a class if fewer exist),
    sorted by position: pos (0-based), ref, alt, class, gene, codon_position."""
    rng = np.random.default_rng(seed)
    coding = coding_snvs(genome, cds, within)
    parts = []
    for kind in CLASSES[:3]:
        rows = coding[coding["class"] == kind]
        if len(rows) < per_class:
            log.warning("only %d %s SNVs exist; taking all", len(rows), kind)
        parts.append(rows.iloc[np.sort(rng.choice(len(rows), min(per_class, len(rows)), replace=False))])
    free = intergenic_positions(genome, spans, within)
    picked = np.sort(rng.choice(free, min(per_class, len(free)), replace=False))
    refs = [genome[p].upper() for p in picked]
    alts = ["ACGT".replace(r, "")[rng.integers(3)] for r in refs]
    parts.append(pd.DataFrame({"pos": picked, "ref": refs, "alt": alts, "class": "intergenic", "gene": "",
                               "codon_position": 0}))
    table = pd.concat(parts, ignore_index=True).sort_values(["pos", "alt"], kind="stable")
    return table.drop_duplicates(["pos", "alt"]).reset_index(drop=True)


def write_vcf(table: pd.DataFrame, chrom: str, length: int, path: str | Path, source: str = "genofm") -> None:
    """A VCF 4.2 of the labelled SNVs: INFO/CLASS the consequence, INFO/GENE the CDS."""
    lines = ["##fileformat=VCFv4.2", f"##source={source}", f"##contig=<ID={chrom},length={length}>",
             '##INFO=<ID=CLASS,Number=1,Type=String,Description="True consequence: synonymous, missense, '
             'stop_gained or intergenic">',
             '##INFO=<ID=GENE,Number=1,Type=String,Description="Locus tag of the CDS hit">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for row in table.itertuples(index=False):
        info = f"CLASS={row[3]}" + (f";GENE={row[4]}" if row[4] else "")
        lines.append(f"{chrom}\t{row[0] + 1}\t.\t{row[1]}\t{row[2]}\t.\tPASS\t{info}")
    Path(path).write_text("\n".join(lines) + "\n")


@dataclass
class CodingSite:
    """A coding SNV's codon, read on the coding strand."""
    row: int  # the SNV's row in the table
    codon_start: int  # 0-based + strand position of the codon's leftmost base
    strand: str  # the CDS's strand
    ref: str  # REF and ALT codons on the coding strand
    alt: str


def coding_sites(genome: str, cds: list[Cds], snvs: pd.DataFrame) -> list[CodingSite]:
    """The codon of every SNV of `snvs` (pos, alt, gene, codon_position as labelled_snv_set
    writes them) whose gene is in `cds`; intergenic SNVs have none."""
    by_name = {c.name: c for c in cds}
    sites = []
    for n, row in enumerate(snvs.itertuples(index=False)):
        c = by_name.get(row.gene)
        if c is None or row.codon_position not in (1, 2, 3):
            continue
        offset = row.codon_position - 1  # of the SNV in its codon, on the coding strand
        start = row.pos - offset if c.strand == "+" else row.pos + offset - 2
        plus = genome[start:start + 3].upper()
        ref = plus if c.strand == "+" else reverse_complement(plus)
        base = row.alt if c.strand == "+" else reverse_complement(row.alt)
        sites.append(CodingSite(n, start, c.strand, ref, ref[:offset] + base + ref[offset + 1:]))
    return sites


def amino_acid_log_probs(codon_log_probs: np.ndarray) -> dict[str, np.ndarray]:
    """log P(amino acid) from log P(codon) over the 64 codons in CODONS order (last axis):
    the sum over each amino acid's synonymous codons ('*' the stops)."""
    return {amino: np.logaddexp.reduce(codon_log_probs[..., index], axis=-1)
            for amino, index in AMINO_ACID_CODONS.items()}


def codon_usage_scores(genome: str, cds: list[Cds], snvs: pd.DataFrame, train: list[tuple[int, int]],
                       level: str = "codon") -> np.ndarray:
    """A reference, not a zero-shot score: log f(ALT) - log f(REF) under the codon usage of
    the CDS inside `train`, for the coding SNVs of `snvs` (NaN for the others), of the codons
    (level "codon") or of their amino acids ("amino_acid": synonymous SNVs score 0). It knows
    the reading frame from the annotation: the best a model can do that learns the frame and
    codon usage (or amino-acid composition) but nothing about proteins."""
    usage = np.full(64, 0.5)  # pseudocount: a codon never seen is rare, not impossible
    for c in cds:
        if c.pseudo or (c.end - c.start) % 3 or not any(s <= c.start and c.end <= e for s, e in train):
            continue
        plus = genome[c.start:c.end].upper()
        coding = plus if c.strand == "+" else reverse_complement(plus)
        for i in range(3, len(coding) - 3, 3):  # inner codons, as the SNVs
            if coding[i:i + 3] in CODON_INDEX:
                usage[CODON_INDEX[coding[i:i + 3]]] += 1
    log_usage = np.log(usage)
    scores = np.full(len(snvs), np.nan)
    if level == "amino_acid":
        amino = amino_acid_log_probs(log_usage)
        for site in coding_sites(genome, cds, snvs):
            scores[site.row] = amino[CODE[site.alt]] - amino[CODE[site.ref]]
    elif level == "codon":
        for site in coding_sites(genome, cds, snvs):
            scores[site.row] = log_usage[CODON_INDEX[site.alt]] - log_usage[CODON_INDEX[site.ref]]
    else:
        raise ValueError(f"level {level!r}: expected codon or amino_acid")
    return scores


def frame_labels(length: int, cds: list[Cds]) -> np.ndarray:
    """Per base: its codon position 0-2 in a + strand CDS, 3-5 in a - strand CDS, 6 outside
    CDS (pseudogenes too). Where genes overlap, the later CDS in the list wins."""
    labels = np.full(length, 6, dtype=np.int64)
    for c in cds:
        if c.pseudo:
            continue
        index = np.arange(c.start, c.end)
        labels[index] = (index - c.start) % 3 if c.strand == "+" else 3 + (c.end - 1 - index) % 3
    return labels


def frame_aware_markov_scores(genome: str, cds: list[Cds], snvs: pd.DataFrame, train: list[tuple[int, int]],
                              order: int = 5) -> np.ndarray:
    """A reference, not a zero-shot score: an order-k Markov model told the reading frame,
    P(base | k bases before it, frame label of the base) (GeneMark's periodic chains),
    counted on the + strand of `train` with a pseudocount of 1. An SNV scores as in
    MarkovModel: the log-likelihood change of the variant base and the k after it. The level
    a model reaches that infers the frame perfectly from context and has order-k memory."""
    from .markov import context_index, encode

    codes = encode(genome.upper()).astype(np.int64)
    labels = frame_labels(len(genome), cds)
    counts = np.zeros((4 ** order * 7, 4))
    for start, end in train:
        if end - start <= order:
            continue
        window = np.lib.stride_tricks.sliding_window_view(codes[start:end], order + 1)  # (n, k+1)
        keep = (window != 255).all(axis=1)
        key = context_index(window, order)[:, 0] * 7 + labels[start + order:end]
        counts += np.bincount(key[keep] * 4 + window[keep, order], minlength=counts.size).reshape(-1, 4)
    log_probs = np.log((counts + 1) / (counts + 1).sum(axis=1, keepdims=True))

    positions = snvs["pos"].to_numpy(dtype=np.int64)
    scores = np.full(len(snvs), np.nan)
    inside = (positions >= order) & (positions + order < len(genome))
    offsets = np.arange(-order, order + 1)
    ref = np.full((len(snvs), 2 * order + 1), 255, dtype=np.int64)
    ref[inside] = codes[positions[inside, None] + offsets]  # (n, 2k+1): k bases each side
    alt = ref.copy()
    alt[:, order] = [encode(a)[0] if len(a) == 1 else 255 for a in snvs["alt"]]
    valid = inside & (ref != 255).all(axis=1) & (alt[:, order] != 255)
    frame = labels[positions[valid, None] + np.arange(order + 1)]  # (m, k+1): labels of the scored bases

    def loglik(seq: np.ndarray) -> np.ndarray:  # the variant base and the k after it
        return log_probs[context_index(seq, order) * 7 + frame, seq[:, order:]].sum(axis=1)

    scores[valid] = loglik(alt[valid]) - loglik(ref[valid])
    return scores
