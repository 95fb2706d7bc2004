"""Generate the small synthetic demo genome shipped in ``config/demo``.

``python -m tools.demo --out config/demo --seed 7``, run from the repository root, writes
deterministically (same seed, byte-identical files; the gzip header carries no mtime and no file name): ``genome.fa.gz`` (chr1 800 kb, chr2 600 kb:
an order-3 Markov background with isochore-like GC and CpG depletion; compact genes on both strands with a
motif-bearing promoter, CpG island, Kozak + ATG, codon-usage CDS split by GT..AG introns, stop codon and
AATAAA; transposon copies, microsatellites, soft-masking and runs of N), ``annotation.gtf`` (Ensembl-style),
``promoters_vs_background.bed`` (probe task), ``variants.vcf`` (true consequence in INFO/CLASS),
``motifs.tsv`` (planted JASPAR motif instances) and ``README.md``.

pyjaspar is needed only here, at generation time, for the motif matrices.
"""

from __future__ import annotations

import argparse
import gzip
import io
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genofm import vcf_writer
from genofm.atomic import atomic_paths
from genofm.sequence import CODONS_TCAG, COMPLEMENT_TABLE, GENETIC_CODE, base_code_table, complement, reverse_complement

Rng = np.random.Generator
Variant = tuple[str, int, str, str, str, str]  # chrom, 0-based pos, REF, ALT, class, gene id ("" if none)

CONTIGS = (("chr1", 800_000), ("chr2", 600_000))
N_RUNS = {"chr1": 2, "chr2": 1}  # runs of N per contig, so that N handling gets exercised
# JASPAR matrices planted anywhere in promoters (CTCF, SP1, NRF1, YY1, ELK1), and TBP as the TATA box.
PROMOTER_MOTIFS = ("MA0139.1", "MA0079.3", "MA0506.1", "MA0095.2", "MA0028.2")
TATA_MOTIF = "MA0108.2"
FLANK = 400  # locus bases upstream of the TSS: promoter and CpG island
WINDOW = (250, 50)  # probe windows: TSS-250 .. TSS+50 (300 bp)
BACKGROUND_CANDIDATES = 600  # random background windows per promoter, the nearest in GC taken
SNV_QUOTA = {"synonymous": 100, "missense": 100, "stop_gained": 100, "motif_disrupting": 100, "neutral": 100}
INDEL_QUOTA = {"frameshift": 15, "neutral": 15}
FILES = ("genome.fa.gz", "annotation.gtf", "promoters_vs_background.bed", "promoter_activity.bed", "variants.vcf",
         "motifs.tsv", "library.fa.gz", "library_labels.tsv.gz", "README.md")
# a designed oligo library (MPRA-style), for motif discovery: LIBRARY_OLIGOS oligos of LIBRARY_LENGTH
# bases cut from free intergenic sequence, each with LIBRARY_SITES sites of the planted motifs; in half
# of them ("shuffled") each site's bases are put in another order with as many CpGs, so base and CpG
# composition tell the halves apart no better than chance and only the motifs do
LIBRARY_OLIGOS, LIBRARY_LENGTH, LIBRARY_SITES, LIBRARY_EDGE = 10_000, 100, 3, 5
# promoter activity (log2 units): each planted site adds its motif's weight (YY1 represses, CTCF
# insulates and adds nothing), each pair of activator sites within SYNERGY_SPACING bases adds
# SYNERGY (cooperative binding), plus noise of sd ACTIVITY_NOISE
ACTIVITY_WEIGHTS = {"SP1": 1.0, "NRF1": 0.8, "ELK1": 0.6, "YY1": -0.5, "CTCF": 0.0, "TBP": 1.2}
ACTIVATORS = ("SP1", "NRF1", "ELK1")
SYNERGY, SYNERGY_SPACING, ACTIVITY_NOISE = 0.6, 30, 0.25

BASES = b"ACGT"
BASE_ARRAY = np.frombuffer(BASES, dtype=np.uint8)
BASE_CODE = base_code_table(other=0, dtype=np.int64)  # A=0 C=1 G=2 T=3 (either case)
CODONS = CODONS_TCAG  # the order of CODON_USAGE
# Human codon usage, per thousand codons (Kazusa), in the TCAG order of CODONS.
CODON_USAGE = np.array([float(x) for x in """
17.6 20.3 7.7 12.9 15.2 17.7 12.2 4.4 12.2 15.3 1.0 0.8 10.6 12.6 1.6 13.2
13.2 19.6 7.2 39.6 17.5 19.8 16.9 6.9 10.9 15.1 12.3 34.2 4.5 10.4 6.2 11.4
16.0 20.8 7.5 22.0 13.1 18.9 15.1 6.1 17.0 19.1 24.4 31.9 12.1 19.5 12.2 12.0
11.0 14.5 7.1 28.1 18.4 27.7 15.8 7.4 21.8 25.1 29.0 39.6 10.8 22.2 16.5 16.5""".split()])
SENSE = np.array([i for i, c in enumerate(CODONS) if GENETIC_CODE[c] != "*"])
STOPS = np.array([i for i, c in enumerate(CODONS) if GENETIC_CODE[c] == "*"])


@dataclass(frozen=True)
class Motif:
    motif_id: str
    name: str
    probs: np.ndarray  # (length, 4): base probabilities per position, ACGT
    targets: tuple[int, ...]  # positions worth disrupting: >= 1 bit, and a base of probability <= 0.05


@dataclass
class Contig:
    name: str
    seq: bytearray
    free: np.ndarray  # True where intergenic, not repeat or N, and not yet used by a neutral pick


@dataclass
class Gene:
    number: int
    chrom: str
    strand: str
    size: int  # locus length: FLANK upstream bases + the transcript
    exons: list[tuple[int, int]]  # locus coordinates (0 = locus 5' end), transcript orientation
    coding: list[tuple[int, int]]  # CDS pieces including the stop codon, locus coordinates
    cds: bytes
    start: int = 0  # genomic 0-based start of the locus, set when placed

    @property
    def gene_id(self) -> str:
        return f"DG{self.number:04d}"

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Genomic half-open interval of the locus interval [a, b)."""
        if self.strand == "+":
            return self.start + a, self.start + b
        return self.start + self.size - b, self.start + self.size - a

    def coding_positions(self) -> np.ndarray:
        """Genomic position of every coding base (stop codon included), in transcript order."""
        local = np.concatenate([np.arange(a, b) for a, b in self.coding])
        return self.start + local if self.strand == "+" else self.start + self.size - 1 - local


@dataclass(frozen=True)
class MotifHit:
    chrom: str
    start: int
    end: int
    strand: str
    motif: Motif
    gene_id: str


# ---------------------------------------------------------------- sequence primitives
def iid(rng: Rng, n: int, gc: float) -> bytes:
    """n independent bases with the given GC fraction (no CpG depletion: CpG-island-like)."""
    return BASE_ARRAY[rng.choice(4, size=n, p=np.array([1 - gc, gc, gc, 1 - gc]) / 2)].tobytes()


def substitute(rng: Rng, base: int) -> int:
    """One of the three other bases, uniformly."""
    return BASES[(BASE_CODE[base] + int(rng.integers(1, 4))) % 4]


def sample_pfm(rng: Rng, probs: np.ndarray) -> bytes:
    """One motif instance, each position drawn from its column of the matrix."""
    return BASE_ARRAY[(rng.random(len(probs))[:, None] > probs.cumsum(1)[:, :3]).sum(1)].tobytes()


def load_motifs(ids: tuple[str, ...]) -> list[Motif]:
    from pyjaspar import jaspardb  # generator-time dependency only

    db, motifs = jaspardb(), []
    for motif_id in ids:
        m = db.fetch_motif_by_id(motif_id)
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=float).T
        probs = counts / counts.sum(1, keepdims=True)
        bits = 2 + (probs * np.log2(np.where(probs > 0, probs, 1))).sum(1)  # information content
        targets = np.flatnonzero((bits >= 1.0) & (probs.min(1) <= 0.05))  # a strong base and a rare one
        motifs.append(Motif(motif_id, m.name, probs, tuple(targets.tolist())))
    return motifs


# ---------------------------------------------------------------- background and repeats
def background(rng: Rng, length: int, noise: np.ndarray) -> bytearray:
    """Order-3 Markov chain: GC drawn per 80-200 kb isochore; G after C made 4x rarer (CpG)."""
    out, ctx, pos = bytearray(length), 0, 0
    while pos < length:
        n = min(int(rng.integers(80_000, 200_001)), length - pos)
        # a little high: the CpG depletion takes ~2 % GC back; the GC-rich end leaves the
        # GC-matched background windows enough intergenic candidates near CpG-island GC
        gc = rng.uniform(0.40, 0.66)
        p = np.array([1 - gc, gc, gc, 1 - gc]) / 2 * np.exp(noise)  # noise: per-context preferences
        p[1::4, 2] *= 0.25  # rows 1, 5, 9...: contexts ending in C; column 2: G
        table = (p.cumsum(1) / p.sum(1, keepdims=True))[:, :3].tolist()
        for i, u in enumerate(rng.random(n).tolist(), start=pos):  # plain loop: ~1 s for 1.4 Mb
            c0, c1, c2 = table[ctx]
            b = 0 if u < c0 else 1 if u < c1 else 2 if u < c2 else 3
            out[i] = BASES[b]
            ctx = ((ctx << 2) | b) & 63
        pos += n
    return out


def transposon_copy(rng: Rng, families: list[bytes]) -> bytes:
    """A copy of a consensus: 5'-truncated 30 % of the time, 5-15 % substituted, either strand."""
    family = families[int(rng.integers(len(families)))]
    trim = int(rng.integers(0, len(family) // 2)) if rng.random() < 0.3 else 0
    seq = np.frombuffer(family[trim:], dtype=np.uint8).copy()
    hit = rng.random(len(seq)) < rng.uniform(0.05, 0.15)
    seq[hit] = BASE_ARRAY[(BASE_CODE[seq[hit]] + rng.integers(1, 4, int(hit.sum()))) % 4]
    return seq.tobytes() if rng.random() < 0.5 else reverse_complement(seq.tobytes())


def fill_gap(contig: Contig, start: int, end: int, rng: Rng, families: list[bytes], n_run: int = 0) -> None:
    """Scatter 0-2 transposon copies, maybe a microsatellite and a run of N over [start, end)."""
    items = [transposon_copy(rng, families) for _ in range(int(rng.integers(0, 3)))]
    if rng.random() < 0.5:
        unit = (b"CA", b"A", b"GATA", b"AAT")[int(rng.integers(4))]
        items.append(unit * (int(rng.integers(20, 61)) // len(unit)))
    if n_run:
        items.append(b"N" * n_run)
    items = [items[i] for i in rng.permutation(len(items))]
    margin = 100  # keeps repeats off gene loci and off each other
    spare = end - start - sum(map(len, items)) - margin * (len(items) + 1)
    while spare < 0:  # a short gap holds fewer repeats: drop the last one that is not the N run
        drop = max(i for i, item in enumerate(items) if not item.startswith(b"N"))
        spare += len(items.pop(drop)) + margin
    pos = start + margin
    for step, item in zip(np.diff(np.sort(rng.integers(0, spare + 1, len(items))), prepend=0), items):
        pos += int(step)
        if not item.startswith(b"N") and rng.random() < 0.5:
            item = item.lower()  # soft-masked, as RepeatMasker output would be
        contig.seq[pos : pos + len(item)] = item
        contig.free[pos : pos + len(item)] = False
        pos += len(item) + margin


# ---------------------------------------------------------------- genes
def plan_gene(rng: Rng, number: int, chrom: str) -> Gene:
    """Lay out one gene: 5'UTR, 2-3 coding exons with 60-300 bp introns between, 3'UTR.

    Genes are long and compact (with the 700-2000 bp gaps, coding sequence is ~44 % of the
    genome, as in a fungus): the reading frame must carry enough signal for a small model to
    learn it in a few CPU minutes; at ~10 % it did not (docs/variant-scoring.md, On the demo)."""
    strand = "+" if rng.random() < 0.5 else "-"
    usage = CODON_USAGE / CODON_USAGE[SENSE].sum()
    body = rng.choice(SENSE, size=int(rng.integers(398, 899)), p=usage[SENSE])  # 400-900 codons in all
    stop = rng.choice(STOPS, p=CODON_USAGE[STOPS] / CODON_USAGE[STOPS].sum())
    cds = ("ATG" + "".join(CODONS[i] for i in body) + CODONS[stop]).encode()
    n_exons = int(rng.integers(2, 4))
    pieces = 30 + rng.multinomial(len(cds) - 30 * n_exons, rng.dirichlet(np.ones(n_exons)))
    u5, u3 = int(rng.integers(50, 151)), int(rng.integers(150, 401))
    x, exon_start, exons, coding = FLANK + u5, FLANK, [], []
    for i, piece in enumerate(pieces.tolist()):
        coding.append((x, x + piece))
        x += piece
        if i < n_exons - 1:
            exons.append((exon_start, x))
            x += int(rng.integers(60, 301))  # the intron
            exon_start = x
    exons.append((exon_start, x + u3))
    return Gene(number, chrom, strand, x + u3, exons, coding, cds)


def plant_motifs(locus: bytearray, rng: Rng, motifs: list[Motif], tata: Motif | None) -> list[tuple]:
    """Write 2-4 motif instances into TSS-250..TSS-5 (either strand), and maybe a TATA box at -32."""
    taken, hits = np.zeros(len(locus), dtype=bool), []
    if tata is not None:
        hits.append((FLANK - 32, FLANK - 32 + len(tata.probs), "+", tata))
        taken[FLANK - 32 : FLANK - 32 + len(tata.probs)] = True
    for k in rng.integers(0, len(motifs), int(rng.integers(2, 5))).tolist():
        width = len(motifs[k].probs)
        for _ in range(20):  # a few tries to find room; a crowded promoter just gets fewer
            s = int(rng.integers(FLANK - 250, FLANK - 5 - width))
            if not taken[s : s + width].any():
                taken[s : s + width] = True
                hits.append((s, s + width, "+" if rng.random() < 0.5 else "-", motifs[k]))
                break
    for s, e, strand, motif in hits:
        site = sample_pfm(rng, motif.probs)
        locus[s:e] = site if strand == "+" else reverse_complement(site)
    return hits


def paint_gene(contig: Contig, gene: Gene, start: int, rng: Rng, motifs: list[Motif],
               tata: Motif) -> list[MotifHit]:
    """Write the gene over the background at `start`; the locus is edited in transcript orientation."""
    gene.start = start
    locus = bytearray(contig.seq[start : start + gene.size])
    locus = locus if gene.strand == "+" else bytearray(reverse_complement(locus))
    atg = gene.coding[0][0]
    cpg_island = rng.random() < 0.8
    if cpg_island:  # covers the promoter and the 5'UTR
        locus[FLANK - 350 : atg] = iid(rng, atg - FLANK + 350, 0.68)
    locus[atg - 6 : atg] = b"GCC" + (b"A", b"G")[int(rng.integers(2))] + b"CC"  # Kozak context
    use_tata = rng.random() < (0.2 if cpg_island else 0.7)  # TATA boxes mostly in CpG-poor promoters
    local_hits = plant_motifs(locus, rng, motifs, tata if use_tata else None)
    done = 0
    for a, b in gene.coding:
        locus[a:b] = gene.cds[done : done + b - a]
        done += b - a
    for (_, a), (b, _) in zip(gene.exons, gene.exons[1:]):  # each intron is [a, b)
        locus[a : a + 6] = (b"GTAAGT", b"GTGAGT")[int(rng.integers(2))]  # 5' splice site
        ppt = int(rng.integers(15, 26))
        locus[b - 3 - ppt : b - 3] = BASE_ARRAY[rng.choice([1, 3], size=ppt, p=[0.4, 0.6])].tobytes()
        locus[b - 3 : b] = b"CAG"  # 3' splice site after the polypyrimidine tract
    locus[gene.size - 25 : gene.size - 19] = b"AATAAA"  # polyadenylation signal
    contig.seq[start : start + gene.size] = locus if gene.strand == "+" else reverse_complement(locus)
    contig.free[start : start + gene.size] = False
    flip = {"+": "+", "-": "-"} if gene.strand == "+" else {"+": "-", "-": "+"}
    return [MotifHit(gene.chrom, *gene.span(s, e), flip[strand], motif, gene.gene_id)
            for s, e, strand, motif in local_hits]


def build_contig(name: str, length: int, rng: Rng, noise: np.ndarray, families: list[bytes],
                 motifs: list[Motif], tata: Motif, first: int) -> tuple[Contig, list[Gene], list[MotifHit]]:
    """Alternate intergenic gaps (with repeats, sometimes N) and genes along one contig."""
    contig = Contig(name, background(rng, length, noise), np.ones(length, dtype=bool))
    n_run_slots = rng.choice(np.arange(5, 40), N_RUNS[name], replace=False).tolist()
    genes, hits, pos = [], [], 0
    while True:
        gap = int(rng.integers(700, 2001))
        n_run = int(rng.integers(1000, 5001)) if len(genes) in n_run_slots else 0
        gene = plan_gene(rng, first + len(genes), name)
        if pos + gap + n_run + gene.size + 2000 > length:
            break
        fill_gap(contig, pos, pos + gap + n_run, rng, families, n_run)
        hits += paint_gene(contig, gene, pos + gap + n_run, rng, motifs, tata)
        genes.append(gene)
        pos = gene.start + gene.size
    fill_gap(contig, pos, length, rng, families)
    return contig, genes, hits


# ---------------------------------------------------------------- variants and windows
def coding_snvs(rng: Rng, contigs: dict[str, Contig], genes: list[Gene], used: set,
                codon_positions: dict) -> list[Variant]:
    """SNVs in CDS (start and stop codons spared), classed by translating the codon before and after;
    each one's position in its codon (1-3, transcript order) goes into `codon_positions`."""
    want, out = {k: SNV_QUOTA[k] for k in ("synonymous", "missense", "stop_gained")}, []
    positions = [g.coding_positions() for g in genes]
    while any(want.values()):
        i = int(rng.integers(len(genes)))
        gene, k = genes[i], int(rng.integers(3, len(positions[i]) - 3))
        at, codon_pos = k % 3, positions[i][k - k % 3 : k - k % 3 + 3].tolist()
        codon = bytes(contigs[gene.chrom].seq[p] for p in codon_pos).upper()
        if gene.strand == "-":
            codon = complement(codon)  # already in transcript order: complement only
        mutant = bytearray(codon)
        mutant[at] = substitute(rng, codon[at])
        ref_aa, alt_aa = GENETIC_CODE[codon.decode()], GENETIC_CODE[mutant.decode()]
        kind = "synonymous" if alt_aa == ref_aa else "stop_gained" if alt_aa == "*" else "missense"
        if want[kind] == 0 or (gene.chrom, codon_pos[at]) in used:
            continue
        want[kind] -= 1
        used.add((gene.chrom, codon_pos[at]))
        ref_alt = bytes([codon[at], mutant[at]])
        ref_alt = ref_alt if gene.strand == "+" else complement(ref_alt)
        out.append((gene.chrom, codon_pos[at], chr(ref_alt[0]), chr(ref_alt[1]), kind, gene.gene_id))
        codon_positions[gene.chrom, codon_pos[at]] = at + 1
    return out


def motif_snvs(rng: Rng, contigs: dict[str, Contig], hits: list[MotifHit], used: set) -> list[Variant]:
    """SNVs turning the best base of a strong motif position (see Motif.targets) into its rarest one."""
    out = []
    while len(out) < SNV_QUOTA["motif_disrupting"]:
        hit = hits[int(rng.integers(len(hits)))]
        i = hit.motif.targets[int(rng.integers(len(hit.motif.targets)))]
        p, pos = hit.motif.probs[i], (hit.start + i if hit.strand == "+" else hit.end - 1 - i)
        best, worst = BASES[int(p.argmax())], BASES[int(p.argmin())]  # on the motif's strand
        if hit.strand == "-":
            best, worst = COMPLEMENT_TABLE[best], COMPLEMENT_TABLE[worst]  # now on the genome's
        ref = contigs[hit.chrom].seq[pos]
        if ref != best or (hit.chrom, pos) in used:
            continue  # this instance does not carry the best base here
        used.add((hit.chrom, pos))
        out.append((hit.chrom, pos, chr(ref), chr(worst), "motif_disrupting", hit.gene_id))
    return out


def indel(rng: Rng, contig: Contig, pos: int, size: int, kind: str, gene_id: str) -> Variant:
    """A VCF-style indel padded with the base at `pos`: deletes the next `size` bases or inserts `size`."""
    if rng.random() < 0.5:
        ref = bytes(contig.seq[pos : pos + size + 1]).upper().decode()
        return contig.name, pos, ref, ref[0], kind, gene_id
    ref = chr(contig.seq[pos]).upper()
    return contig.name, pos, ref, ref + iid(rng, size, 0.5).decode(), kind, gene_id


def frameshifts(rng: Rng, contigs: dict[str, Contig], genes: list[Gene], used: set) -> list[Variant]:
    """1, 2 or 4 bp insertions/deletions inside one CDS piece (start/stop codons spared)."""
    out = []
    while len(out) < INDEL_QUOTA["frameshift"]:
        gene, size = genes[int(rng.integers(len(genes)))], int(rng.choice([1, 2, 4]))
        inner = np.sort(gene.coding_positions()[3:-3])
        j = int(rng.integers(len(inner) - size))
        span = inner[j : j + size + 1].tolist()
        if span[-1] - span[0] != size or any((gene.chrom, p) in used for p in span):
            continue  # crosses an intron, or touches another variant
        out.append(indel(rng, contigs[gene.chrom], span[0], size, "frameshift", gene.gene_id))
        used.update((gene.chrom, p) for p in span)
    return out


def random_free_interval(rng: Rng, contigs: list[Contig], width: int) -> tuple[Contig, int]:
    """A random interval of `width` free intergenic bases (no gene, promoter, repeat or N)."""
    weights = np.array([len(c.seq) for c in contigs], dtype=float)
    # what rng.choice(len(contigs), p=weights / weights.sum()) draws (one uniform looked up in
    # the CDF), without its checks of p on each of the many tries
    cdf = (weights / weights.sum()).cumsum()
    cdf /= cdf[-1]
    while True:
        contig = contigs[int(cdf.searchsorted(rng.random(), side="right"))]
        start = int(rng.integers(0, len(contig.seq) - width))
        if contig.free[start] and contig.free[start : start + width].all():
            return contig, start


def free_interval(rng: Rng, contigs: list[Contig], width: int) -> tuple[Contig, int]:
    """Take a random free interval: later picks do not overlap it."""
    contig, start = random_free_interval(rng, contigs, width)
    contig.free[start : start + width] = False
    return contig, start


def gc_fraction(seq: bytes) -> float:
    return sum(map(seq.upper().count, (b"G", b"C"))) / len(seq)


def gc_matched_interval(rng: Rng, contigs: list[Contig], width: int, gc: float, candidates: int) -> tuple[Contig, int]:
    """Take the free interval whose GC is nearest `gc` among `candidates` random ones, so that
    the probe's background is not told apart from promoters by GC content alone."""
    picks = [random_free_interval(rng, contigs, width) for _ in range(candidates)]
    contig, start = min(picks, key=lambda p: abs(gc_fraction(p[0].seq[p[1] : p[1] + width]) - gc))
    contig.free[start : start + width] = False
    return contig, start


def neutral_variants(rng: Rng, contigs: list[Contig]) -> list[Variant]:
    out = []
    for _ in range(SNV_QUOTA["neutral"]):
        contig, pos = free_interval(rng, contigs, 1)
        ref = contig.seq[pos]
        out.append((contig.name, pos, chr(ref), chr(substitute(rng, ref)), "neutral", ""))
    for _ in range(INDEL_QUOTA["neutral"]):
        size = int(rng.choice([1, 2, 3, 5]))
        contig, pos = free_interval(rng, contigs, size + 1)
        out.append(indel(rng, contig, pos, size, "neutral", ""))
    return out


# ---------------------------------------------------------------- the oligo library
def shuffled_site(rng: Rng, site: bytes) -> bytes:
    """The site's bases in another order with as many CpGs (a scrambled-motif control)."""
    while True:
        candidate = bytes(rng.permutation(np.frombuffer(site, dtype=np.uint8)))
        if candidate != site and candidate.count(b"CG") == site.count(b"CG"):
            return candidate


def place_sites(rng: Rng, seq: bytearray, motifs: list[Motif], intact: bool) -> list[str] | None:
    """Write LIBRARY_SITES sampled sites into seq (non-overlapping, at least 2 bases apart and
    LIBRARY_EDGE from the ends); None when a site finds no room (the caller draws again)."""
    free = np.zeros(len(seq), dtype=bool)
    free[LIBRARY_EDGE : len(seq) - LIBRARY_EDGE] = True
    sites = []
    for _ in range(LIBRARY_SITES):
        motif = motifs[int(rng.integers(len(motifs)))]
        site = sample_pfm(rng, motif.probs)
        strand = "+" if rng.random() < 0.5 else "-"
        if strand == "-":
            site = reverse_complement(site)
        if not intact:
            site = shuffled_site(rng, site)
        starts = [a for a in range(len(seq) - len(site) + 1) if free[a : a + len(site)].all()]
        if not starts:
            return None
        at = int(rng.choice(starts))
        seq[at : at + len(site)] = site
        free[max(0, at - 2) : at + len(site) + 2] = False
        sites.append(f"{motif.name}:{at}:{strand}")
    return sites


def oligo_library(rng: Rng, contigs: list[Contig], motifs: list[Motif]) -> list[tuple[str, bytes, str, str]]:
    """(name, sequence, label, sites) of each oligo: a free intergenic background (upper-cased) with
    its sites (place_sites); sites lists motif:start:strand (0-based), the motif a shuffled site
    was made from included."""
    oligos = []
    for number in range(1, LIBRARY_OLIGOS + 1):
        intact, sites = number % 2 == 1, None
        while sites is None:
            contig, start = random_free_interval(rng, contigs, LIBRARY_LENGTH)
            seq = bytearray(contig.seq[start : start + LIBRARY_LENGTH].upper())
            sites = place_sites(rng, seq, motifs, intact)
        oligos.append((f"oligo{number:05d}", bytes(seq), "sites" if intact else "shuffled", ",".join(sites)))
    return oligos


# ---------------------------------------------------------------- writers
def gzip_bytes(records: list[tuple[str, bytes]]) -> bytes:
    """FASTA records as plain (not bgzip) gzip, mtime 0 and no file name, so that the bytes depend
    on the content only."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        for name, seq in records:
            gz.write(b">%s\n" % name.encode())
            gz.write(b"".join(seq[i : i + 60] + b"\n" for i in range(0, len(seq), 60)))
    return buf.getvalue()


def fasta_gz(contigs: list[Contig]) -> bytes:
    return gzip_bytes([(c.name, bytes(c.seq)) for c in contigs])


GTF_ORDER = ("gene", "transcript", "exon", "CDS", "start_codon", "stop_codon", "five_prime_utr",
             "three_prime_utr")


def gtf_text(genes: list[Gene], seed: int) -> str:
    """Ensembl-shaped GTF (1-based, inclusive); the CDS lines exclude the stop codon, as Ensembl's do."""
    rows = []
    for g in genes:
        names = f'gene_name "DEMO{g.number}"; gene_biotype "protein_coding";'
        attrs = f'gene_id "{g.gene_id}"; transcript_id "DT{g.number:04d}"; {names}'
        atg, cds_end = g.coding[0][0], g.coding[-1][1]
        features = [("gene", FLANK, g.size, ".", f'gene_id "{g.gene_id}"; {names}'),
                    ("transcript", FLANK, g.size, ".", attrs),
                    ("start_codon", atg, atg + 3, "0", attrs),
                    ("stop_codon", cds_end - 3, cds_end, "0", attrs),
                    ("five_prime_utr", FLANK, atg, ".", attrs),
                    ("three_prime_utr", cds_end, g.size, ".", attrs)]
        done = 0  # coding bases before this piece, for the frame column
        for n, ((ea, eb), (ca, cb)) in enumerate(zip(g.exons, g.coding), start=1):
            cb = cb - 3 if n == len(g.coding) else cb
            features.append(("exon", ea, eb, ".", f'{attrs} exon_number "{n}";'))
            features.append(("CDS", ca, cb, str(-done % 3), f'{attrs} exon_number "{n}";'))
            done += cb - ca
        for feature, a, b, frame, text in features:
            start, end = g.span(a, b)
            line = f"{g.chrom}\tgenofm\t{feature}\t{start + 1}\t{end}\t.\t{g.strand}\t{frame}\t{text}\n"
            rows.append((g.chrom, start, GTF_ORDER.index(feature), line))
    return f"#!genome-build genofm-demo\n#!genome-version seed{seed}\n" + "".join(r[3] for r in sorted(rows))


def vcf_text(contigs: list[Contig], variants: list[Variant], seed: int, codon_positions: dict) -> str:
    # the source line keeps the generator's old module name: the committed demo VCF says so
    meta = [("source", f"genofm.demo seed={seed}"), ("reference", "genome.fa.gz")]
    info = [("CLASS", "1", "String", "True consequence: synonymous, missense, stop_gained, frameshift, "
             "motif_disrupting or neutral (intergenic, outside repeats and promoters)"),
            ("GENE", "1", "String", "Gene whose CDS or promoter the variant hits"),
            ("CODON_POS", "1", "Integer", "Position of a coding SNV in its codon (1-3, on the coding strand)")]
    records = [(chrom, pos + 1, f"var{n}", ref, alt, {"CLASS": kind, "GENE": gene}
                | ({"CODON_POS": codon_positions[chrom, pos]} if (chrom, pos) in codon_positions else {}))
               for n, (chrom, pos, ref, alt, kind, gene) in enumerate(sorted(variants), start=1)]
    return vcf_writer.vcf_text(meta, [(c.name, len(c.seq)) for c in contigs], info, records)


def promoter_activity(windows: list[tuple], hits: list[MotifHit], rng: Rng) -> list[tuple]:
    """Each promoter window with its activity in column 7: a function of the count, kind and
    spacing of the sites planted in it (ACTIVITY_WEIGHTS, SYNERGY) plus noise."""
    by_gene: dict[str, list[MotifHit]] = {}
    for h in hits:
        by_gene.setdefault(h.gene_id, []).append(h)
    rows = []
    for chrom, start, end, gene_id, _, strand, _ in windows:
        sites = [h for h in by_gene.get(gene_id, []) if start <= h.start and h.end <= end]
        value = 2.0 + sum(ACTIVITY_WEIGHTS[h.motif.name] for h in sites)
        active = sorted(h.start for h in sites if h.motif.name in ACTIVATORS)
        value += SYNERGY * sum(b - a <= SYNERGY_SPACING for i, a in enumerate(active) for b in active[i + 1:])
        value += rng.normal(0.0, ACTIVITY_NOISE)
        rows.append((chrom, start, end, gene_id, 0, strand, f"{value:.3f}"))
    return rows


def readme_text(seed: int, motifs: list[Motif], n_genes: int, coding_fraction: float) -> str:
    planted = ", ".join(f"{m.motif_id} ({m.name})" for m in motifs)
    return f"""# Demo data (synthetic)

Regenerate: `python -m tools.demo --out config/demo --seed {seed}` (needs pyjaspar; same seed, same
bytes).

- `genome.fa.gz`: chr1 (800 kb) and chr2 (600 kb), plain gzip. Order-3 Markov background (isochores,
  CpG depletion), {n_genes} compact protein-coding genes (coding sequence {coding_fraction:.0%} of the genome),
  transposon copies and microsatellites (half soft-masked), runs of N.
- `annotation.gtf`: Ensembl-style GTF of the genes (CDS lines exclude the stop codon, which has its own line).
- `promoters_vs_background.bed`: BED6+1, 0-based. 300 bp windows TSS-250..TSS+50 (score 1, column 7
  `promoter`) and as many free intergenic windows (score 0, column 7 `background`), each the nearest
  in GC to its promoter among {BACKGROUND_CANDIDATES} random ones (the genome has few intergenic windows
  as GC-rich as a CpG-island promoter, so background GC is still lower on average).
- `promoter_activity.bed`: BED6+1, the promoter windows with an activity in column 7 (log2 units):
  2 + the planted sites' weights ({", ".join(f"{k} {v:+g}" for k, v in ACTIVITY_WEIGHTS.items())}),
  +{SYNERGY} per pair of activator sites ({", ".join(ACTIVATORS)}) within {SYNERGY_SPACING} bp, plus noise (sd
  {ACTIVITY_NOISE}): a quantitative target that depends on motif count, kind and spacing.
- `variants.vcf`: SNVs and short indels; INFO/CLASS is the true consequence, INFO/GENE the gene hit.
- `motifs.tsv`: planted motif instances, 0-based half-open. JASPAR matrices: {planted}.
- `library.fa.gz` and `library_labels.tsv.gz`: a designed oligo library (MPRA-style), {LIBRARY_OLIGOS:,} oligos of
  {LIBRARY_LENGTH} bp cut from free intergenic sequence, each with {LIBRARY_SITES} sites sampled from the planted
  matrices (either strand, at least {LIBRARY_EDGE} bp from the ends). Label `sites`: the sites as sampled;
  `shuffled` (every other oligo): each site's bases in another order with as many CpGs, so composition
  does not tell the two apart, only the motifs do. Column `sites`: motif:start:strand, 0-based.
"""


# ---------------------------------------------------------------- driver
def generate(out: str | Path, seed: int = 7) -> dict:
    """Build the demo genome and write FILES into `out`; return counts for a report."""
    rng = np.random.default_rng(seed)
    motifs = load_motifs(PROMOTER_MOTIFS + (TATA_MOTIF,))
    noise = rng.normal(0.0, 0.35, size=(64, 4))  # per-context base preferences: the order-3 structure
    families = [iid(rng, int(rng.integers(280, 331)), rng.uniform(0.38, 0.55)) for _ in range(3)]
    contigs, genes, hits = [], [], []
    for name, length in CONTIGS:
        contig, more_genes, more_hits = build_contig(name, length, rng, noise, families, motifs[:-1],
                                                     motifs[-1], first=len(genes) + 1)
        contigs, genes, hits = contigs + [contig], genes + more_genes, hits + more_hits
    by_name, used, codon_positions = {c.name: c for c in contigs}, set(), {}
    variants = coding_snvs(rng, by_name, genes, used, codon_positions) + motif_snvs(rng, by_name, hits, used)
    variants += frameshifts(rng, by_name, genes, used) + neutral_variants(rng, contigs)
    windows = [(g.chrom, *g.span(FLANK - WINDOW[0], FLANK + WINDOW[1]), g.gene_id, 1, g.strand, "promoter")
               for g in genes]
    for i, promoter in enumerate(list(windows), start=1):  # a GC-matched background window per promoter
        gc = gc_fraction(by_name[promoter[0]].seq[promoter[1] : promoter[2]])
        contig, start = gc_matched_interval(rng, contigs, sum(WINDOW), gc, BACKGROUND_CANDIDATES)
        windows.append((contig.name, start, start + sum(WINDOW), f"bg{i:04d}", 0, "+", "background"))
    activity = promoter_activity(windows[:len(genes)], hits, np.random.default_rng(seed + 1))  # draws after the rest
    library = oligo_library(np.random.default_rng(seed + 2), contigs, motifs)  # draws after the rest
    motif_rows = sorted((h.chrom, h.start, h.end, h.strand, h.motif.motif_id, h.motif.name, h.gene_id)
                        for h in hits)
    texts = {
        "annotation.gtf": gtf_text(genes, seed),
        "promoters_vs_background.bed": "".join("\t".join(map(str, w)) + "\n" for w in sorted(windows)),
        "promoter_activity.bed": "".join("\t".join(map(str, w)) + "\n" for w in sorted(activity)),
        "variants.vcf": vcf_text(contigs, variants, seed, codon_positions),
        "motifs.tsv": "chrom\tstart\tend\tstrand\tmotif_id\tmotif_name\tgene_id\n"
        + "".join("\t".join(map(str, row)) + "\n" for row in motif_rows),
        "README.md": readme_text(seed, motifs, len(genes),
                                 sum(len(g.cds) for g in genes) / sum(len(c.seq) for c in contigs)),
    }
    out = Path(out)
    with atomic_paths(*(out / f for f in FILES)) as tmps:  # all files or none
        for tmp in tmps:
            if tmp.name == "genome.fa.gz":
                tmp.write_bytes(fasta_gz(contigs))
            elif tmp.name == "library.fa.gz":
                tmp.write_bytes(gzip_bytes([(name, seq) for name, seq, _, _ in library]))
            elif tmp.name == "library_labels.tsv.gz":
                tmp.write_bytes(gzip.compress(("name\tlabel\tsites\n" + "".join(
                    f"{name}\t{label}\t{sites}\n" for name, _, label, sites in library)).encode(), 9, mtime=0))
            else:
                tmp.write_text(texts[tmp.name])
    classes = Counter(v[4] + ("" if len(v[2]) == len(v[3]) else " indel") for v in variants)
    return {"genes": len(genes), "motif instances": len(hits), "classes": dict(classes),
            "motifs": [(m.motif_id, m.name) for m in motifs],
            "bytes": {f: (out / f).stat().st_size for f in FILES}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic demo genome and its companion files.")
    parser.add_argument("--out", type=Path, default=Path("config/demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    summary = generate(args.out, args.seed)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
