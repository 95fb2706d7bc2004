"""An order-k Markov model of a genome: the simple baseline a DNA language model must beat.

P(base | the k bases before it), counted on both strands of the training sequence with a
pseudocount. An SNV scores the change in log-likelihood of the bases whose context it
touches (the variant base and the k after it), averaged over the two strands:
negative = the alternative sequence looks less like the genome.
"""

from __future__ import annotations

import logging

import numpy as np

from .sequence import encode, reverse_complement_codes

log = logging.getLogger(__name__)

_CHUNK = 1 << 22


def context_index(codes: np.ndarray, order: int) -> np.ndarray:
    """(..., L) base codes -> (..., L - order): the `order` bases before each of positions
    order..L-1 as one base-4 number (the first base most significant)."""
    length = codes.shape[-1]
    index = np.zeros(codes.shape[:-1] + (length - order,), dtype=np.int64)
    for j in range(order):
        index = index * 4 + codes[..., j:length - order + j]
    return index


class MarkovModel:
    def __init__(self, order: int = 5, pseudocount: float = 1.0):
        self.order = order
        self.pseudocount = pseudocount
        self.counts = np.zeros((4 ** order, 4), dtype=np.float64)  # (context, next base)

    def fit(self, sequences) -> "MarkovModel":
        """Count (k+1)-mers of each sequence and of its reverse complement."""
        for seq in sequences:
            for begin in range(0, len(seq), _CHUNK):  # bounded memory on whole chromosomes
                codes = encode(seq[begin:begin + _CHUNK + self.order])
                for strand in (codes, reverse_complement_codes(codes)):
                    self._count(strand)
        return self

    def _count(self, codes: np.ndarray) -> None:
        k = self.order
        if len(codes) <= k:
            return
        windows = np.lib.stride_tricks.sliding_window_view(codes, k + 1)  # (n, k+1)
        windows = windows[(windows != 255).all(axis=1)].astype(np.int64)
        index = context_index(windows, k)[:, 0] * 4 + windows[:, k]  # context * 4 + next base
        self.counts += np.bincount(index, minlength=4 ** (k + 1)).reshape(-1, 4)

    @property
    def log_probs(self) -> np.ndarray:
        counts = self.counts + self.pseudocount
        return np.log(counts / counts.sum(axis=1, keepdims=True))  # (4**k, 4)

    def _loglik(self, codes: np.ndarray, log_probs: np.ndarray) -> np.ndarray:
        """Summed log P of positions k.. of each row of codes (n, L)."""
        k = self.order
        return log_probs[context_index(codes, k), codes[:, k:]].sum(axis=1)

    def score_windows(self, windows: list[str], alts: list[str]) -> np.ndarray:
        """log P(alt sequence) - log P(ref sequence) of SNVs at the centre of windows of
        2k+1 bases (k on each side), averaged over both strands; NaN where a window holds
        a base other than A/C/G/T or is short (a contig end)."""
        k = self.order
        n = len(windows)
        scores = np.full(n, np.nan)
        if n == 0:
            return scores
        full = np.array([len(w) == 2 * k + 1 for w in windows])
        ref = np.full((n, 2 * k + 1), 255, dtype=np.uint8)
        if full.any():
            ref[full] = encode("".join(w for w, f in zip(windows, full) if f)).reshape(-1, 2 * k + 1)
        alt_codes = encode("".join(a if len(a) == 1 else "N" for a in alts))
        valid = full & (ref != 255).all(axis=1) & (alt_codes != 255)
        ref = ref[valid].astype(np.int64)
        alt = ref.copy()
        alt[:, k] = alt_codes[valid]
        total = np.zeros(len(ref))
        for strand in (lambda x: x, reverse_complement_codes):  # + strand, then reverse complement
            total += self._loglik(strand(alt), self.log_probs) - self._loglik(strand(ref), self.log_probs)
        scores[valid] = total / 2
        return scores

    def score_snvs(self, genome: str, positions, alts) -> np.ndarray:
        """score_windows for SNVs at 0-based positions of one sequence."""
        k = self.order
        windows = [genome[p - k:p + k + 1] if p >= k else "" for p in positions]
        return self.score_windows(windows, list(alts))


def fit_markov(order: int, region_files: list[str], fasta: str) -> MarkovModel:
    """A Markov model of the sequences of region parquet files, or of the whole FASTA if none."""
    import pysam

    from .regions import read_regions

    model = MarkovModel(order)
    if region_files:
        for path in region_files:
            model.fit(read_regions(path, columns=["sequence"])["sequence"])
        source = ", ".join(region_files)
    else:
        with pysam.FastaFile(str(fasta)) as fa:
            model.fit(fa.fetch(name) for name in fa.references)
        source = str(fasta)
    log.info("order-%d Markov baseline: %s bases (both strands) of %s", order, f"{int(model.counts.sum()):,}", source)
    return model
