"""References for the model-quality benchmark (tests/benchmarks/mtb_benchmark.py), not
zero-shot scores: each knows every coding SNV's codon and reading frame from the annotation
(genofm.consequence reads the GenBank CDS and draws the labelled SNVs). Codon and amino-acid
usage of the training genes, and an order-k Markov model told each base's codon position."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from genofm.consequence import Cds
from genofm.markov import context_index
from genofm.sequence import AMINO_ACIDS, CODON_INDEX, CODONS, GENETIC_CODE, encode, reverse_complement

# tables 1 and 11, which the labelled SNVs come from, translate alike
AMINO_ACID_CODONS = {amino: [CODON_INDEX[c] for c in CODONS if GENETIC_CODE[c] == amino] for amino in AMINO_ACIDS}


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
            scores[site.row] = amino[GENETIC_CODE[site.alt]] - amino[GENETIC_CODE[site.ref]]
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
