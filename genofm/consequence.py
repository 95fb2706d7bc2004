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
from .sequence import BASES, GENETIC_CODES, reverse_complement
from .vcf_writer import write_vcf as write_vcf_file

log = logging.getLogger(__name__)

# Translation tables read (/transl_table): the standard code and table 11, whose amino acids
# are the standard code's (it differs only in which codons may start a protein, and start
# codons are skipped here).
SUPPORTED_TABLES = set(GENETIC_CODES)
CLASSES = ("synonymous", "missense", "stop_gained", "intergenic")


@dataclass
class Cds:
    start: int  # 0-based, half-open: the span of the coding sequence
    end: int
    strand: str  # + or -
    name: str
    table: int = 11
    pseudo: bool = False
    translation: str = ""  # the annotated protein (/translation), when given
    contig: str = ""
    segments: tuple[tuple[int, int], ...] = ()  # a multi-exon CDS: its pieces, in genome order

    def pieces(self) -> tuple[tuple[int, int], ...]:
        return self.segments or ((self.start, self.end),)

    @property
    def length(self) -> int:
        return sum(e - s for s, e in self.pieces())

    def coding_positions(self) -> np.ndarray:
        """The genome positions (0-based, + strand) of the coding bases, in coding order."""
        positions = np.concatenate([np.arange(s, e) for s, e in self.pieces()])
        return positions if self.strand == "+" else positions[::-1]

    def coding_sequence(self, genome: str) -> str:
        plus = "".join(genome[s:e] for s, e in self.pieces()).upper()
        return plus if self.strand == "+" else reverse_complement(plus)


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
    depth = coding_depth(genome, cds)
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
        if c.length % 3:
            counts["length not a multiple of 3"] += 1
            continue
        if within is not None and not any(s <= c.start and c.end <= e for s, e in within):
            counts["outside the intervals"] += 1
            continue
        code = GENETIC_CODES[c.table]
        coding = c.coding_sequence(genome)
        positions = c.coding_positions()
        codons = [coding[i:i + 3] for i in range(0, len(coding), 3)]
        if any(code.get(codon, "X") == "*" for codon in codons[1:-1]):
            counts["internal stop"] += 1
            continue
        for index in range(1, len(codons) - 1):  # no start, no stop codon
            codon = codons[index]
            if codon not in code:
                continue  # an N or other ambiguity code
            for offset in range(3):
                pos = int(positions[3 * index + offset])  # on the + strand
                if depth[pos] != 1:
                    continue  # overlapping genes: the consequence is not one
                for base in BASES:
                    if base == codon[offset]:
                        continue
                    mutant = codon[:offset] + base + codon[offset + 1:]
                    amino, new = code[codon], code[mutant]
                    kind = "synonymous" if new == amino else "stop_gained" if new == "*" else "missense"
                    ref, alt = (codon[offset], base) if c.strand == "+" else (
                        reverse_complement(codon[offset]), reverse_complement(base))
                    rows.append((pos, ref, alt, kind, c.name, offset + 1))
    left_out = ", ".join(f"{n} {why}" for why, n in counts.items() if n)
    log.info("coding SNVs: %d from %d CDS%s", len(rows), len(cds) - sum(counts.values()),
             f" ({left_out} left out)" if left_out else "")
    return pd.DataFrame(rows, columns=["pos", "ref", "alt", "class", "gene", "codon_position"])


def coding_depth(genome: str, cds: list[Cds]) -> np.ndarray:
    """How many CDS cover each base of `genome` (their pieces, not the introns between)."""
    coverage = np.zeros(len(genome) + 1, dtype=np.int32)
    for c in cds:
        if c.end > len(genome):
            raise GenofmInputError(f"CDS {c.name} ({c.start + 1}..{c.end}) runs past the end of the "
                                   f"{len(genome):,} bp sequence: annotation of another assembly?")
        for s, e in c.pieces():
            coverage[s] += 1
            coverage[e] -= 1
    return np.cumsum(coverage)[:-1]


def four_fold_sites(genome: str, cds: list[Cds]) -> np.ndarray:
    """0-based positions of four-fold degenerate sites: third codon bases where every base
    gives the same amino acid, in usable codons (as coding_snvs: no start or stop codon, no
    pseudogene, internal stop or length off the frame), covered by one CDS only. The neutral
    sites a phylogenetic model of neutral evolution is fitted on."""
    depth = coding_depth(genome, cds)
    sites = []
    for c in cds:
        if c.pseudo or c.table not in SUPPORTED_TABLES or c.length % 3:
            continue
        code = GENETIC_CODES[c.table]
        coding = c.coding_sequence(genome)
        codons = [coding[i:i + 3] for i in range(0, len(coding), 3)]
        if any(code.get(codon, "X") == "*" for codon in codons[1:-1]):
            continue
        positions = c.coding_positions()
        for index in range(1, len(codons) - 1):
            codon = codons[index]
            if codon in code and len({code[codon[:2] + base] for base in BASES}) == 1:
                pos = int(positions[3 * index + 2])
                if depth[pos] == 1:
                    sites.append(pos)
    return np.unique(np.array(sites, dtype=np.int64))


def read_cds_lines(path: str | Path, transcript_attribute: str = "transcript_id",
                   table: int = 1) -> dict[str, list[Cds]]:
    """The CDS of a GTF, GFF2 or GFF3 file (plain or gzip) by contig: its CDS lines grouped into
    coding sequences by `transcript_attribute` (GTF: transcript_id; JGI's GFF2: name; GFF3:
    Parent), pieces in genome order. A CDS line without the attribute stops naming the line;
    a coding sequence whose pieces lie on two contigs or strands, or whose first piece
    (in coding order) has a frame other than 0 (partial), is left out and counted."""
    from .files import open_text

    pattern = re.compile(rf'(?:^|;)\s*{re.escape(transcript_attribute)}(?:\s+"([^"]*)"|\s+([^;\s]+)|=([^;]+))')
    pieces: dict[str, list[tuple[str, int, int, str, str]]] = {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 9:
                raise GenofmInputError(f"{path}, line {number}: {len(fields)} tab-separated fields, 9 expected")
            if fields[2] != "CDS":
                continue
            match = pattern.search(fields[8])
            if not match:
                raise GenofmInputError(f"{path}, line {number}: a CDS line without {transcript_attribute} (the "
                                       f"attribute that groups CDS lines into coding sequences)")
            name = next(g for g in match.groups() if g is not None)
            pieces.setdefault(name, []).append((fields[0], int(fields[3]) - 1, int(fields[4]), fields[6], fields[7]))
    by_contig: dict[str, list[Cds]] = {}
    left_out = 0
    for name, parts in pieces.items():
        parts.sort(key=lambda p: p[1])
        first = parts[0] if parts[0][3] == "+" else parts[-1]
        if len({(p[0], p[3]) for p in parts}) != 1 or first[4] not in ("0", "."):
            left_out += 1
            continue
        contig, strand = parts[0][0], parts[0][3]
        by_contig.setdefault(contig, []).append(
            Cds(parts[0][1], parts[-1][2], strand, name, table, contig=contig,
                segments=tuple((p[1], p[2]) for p in parts)))
    log.info("%s: %d coding sequences on %d contigs (%d left out: split over contigs or strands, or partial)",
             path, sum(map(len, by_contig.values())), len(by_contig), left_out)
    return by_contig


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
    free &= np.isin(acgt, np.frombuffer(BASES.encode(), dtype=np.uint8))
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
    alts = [BASES.replace(r, "")[rng.integers(3)] for r in refs]
    parts.append(pd.DataFrame({"pos": picked, "ref": refs, "alt": alts, "class": "intergenic", "gene": "",
                               "codon_position": 0}))
    table = pd.concat(parts, ignore_index=True).sort_values(["pos", "alt"], kind="stable")
    return table.drop_duplicates(["pos", "alt"]).reset_index(drop=True)


def write_vcf(table: pd.DataFrame, contigs: list[tuple[str, int]], path: str | Path, source: str = "genofm") -> None:
    """A VCF 4.2 of the labelled SNVs (a `chrom` column naming each one's contig, in the order of
    `contigs`): INFO/CLASS the consequence, INFO/GENE the CDS, INFO/CODON_POS the SNV's position
    in its codon."""
    info = [("CLASS", "1", "String", "True consequence: synonymous, missense, stop_gained or intergenic"),
            ("GENE", "1", "String", "The CDS hit (locus tag or transcript)"),
            ("CODON_POS", "1", "Integer", "Position of a coding SNV in its codon (1-3, on the coding strand)")]
    records = ((row.chrom, row.pos + 1, ".", row.ref, row.alt, {"CLASS": row._4, "GENE": row.gene}
                | ({"CODON_POS": int(row.codon_position)} if row.codon_position else {}))
               for row in table[["chrom", "pos", "ref", "alt", "class", "gene", "codon_position"]]
               .itertuples(index=False))
    write_vcf_file(path, [("source", source)], contigs, info, records)


def read_feature_spans(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Every feature's span (0-based, half-open) of a GTF/GFF file by contig: where intergenic
    SNVs must not fall."""
    from .files import open_text

    spans: dict[str, list[tuple[int, int]]] = {}
    with open_text(path) as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) >= 5 and fields[3].isdigit() and fields[4].isdigit():
                spans.setdefault(fields[0], []).append((int(fields[3]) - 1, int(fields[4])))
    return spans


def labelled_snvs_of_genome(fasta, cds_by_contig: dict[str, list[Cds]], spans_by_contig: dict[str, list],
                            per_class: int, seed: int, keep=None,
                            within: dict[str, list[tuple[int, int]]] | None = None) -> pd.DataFrame:
    """`per_class` SNVs of each class drawn uniformly over a genome of several contigs, one
    contig at a time (so memory holds one contig's SNVs): each candidate gets a seeded random
    key and the `per_class` smallest keys of a class are kept. `keep(contig, positions)` (a
    boolean mask) filters candidates first (e.g. enough species aligned); with `within` (intervals
    by contig), only genes wholly inside them and intergenic bases inside them. Columns: chrom, pos
    (0-based), ref, alt, class, gene, codon_position; sorted by contig (FASTA order), pos, alt."""
    rng = np.random.default_rng(seed)
    kept: dict[str, pd.DataFrame] = {}

    def offer(rows: pd.DataFrame, keys: np.ndarray) -> None:  # keep the per_class smallest keys of each class
        rows = rows.assign(key=keys)
        for kind, group in rows.groupby("class"):
            both = pd.concat([kept[kind], group]) if kind in kept else group
            kept[kind] = both.nsmallest(per_class, "key")

    for contig in fasta.references:
        if within is not None and not within.get(contig):
            continue
        inside = within.get(contig) if within is not None else None
        genome = fasta.fetch(contig).upper()
        if cds_by_contig.get(contig):
            coding = coding_snvs(genome, cds_by_contig[contig], inside)
            if keep is not None and len(coding):
                coding = coding[keep(contig, coding["pos"].to_numpy())]
            offer(coding.assign(chrom=contig), rng.random(len(coding)))
        free = intergenic_positions(genome, spans_by_contig.get(contig, []), inside)
        if keep is not None and len(free):
            free = free[keep(contig, free)]
        keys = rng.random(len(free))
        if len(free) > per_class:  # only the contig's smallest keys can be among the genome's
            smallest = np.argpartition(keys, per_class)[:per_class]
            free, keys = free[smallest], keys[smallest]
        refs = np.frombuffer(genome.encode(), dtype="S1")[free].astype(str)
        alts = [BASES.replace(r, "")[i] for r, i in zip(refs, rng.integers(0, 3, len(free)))]
        offer(pd.DataFrame({"pos": free, "ref": refs, "alt": alts, "class": "intergenic", "gene": "",
                            "codon_position": 0, "chrom": contig}), keys)
    for kind in CLASSES:
        if kind not in kept or len(kept[kind]) < per_class:
            log.warning("only %d %s SNVs exist; taking all", len(kept.get(kind, [])), kind)
    order = {name: i for i, name in enumerate(fasta.references)}
    table = pd.concat(kept.values(), ignore_index=True).drop(columns="key")
    table = table.assign(rank=table["chrom"].map(order)).sort_values(["rank", "pos", "alt"], kind="stable")
    return table.drop(columns="rank").drop_duplicates(["chrom", "pos", "alt"]).reset_index(drop=True)
