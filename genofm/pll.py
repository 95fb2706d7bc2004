"""Variant scores of masked LMs over subword tokens (BPE as in DNABERT-2, WordPiece), where REF
and ALT windows tokenize differently: the pseudo-log-likelihood (PLL) difference over the
tokens covering the variant.

For each strand: tokenize the REF window and the ALT window (the window with the allele
applied); take the shortest stretch of bases [s, e) around the variant whose two ends are
token boundaries in both tokenizations (after the variant, ALT positions are shifted by the
allele's length difference); then

    pll = sum over ALT tokens in the stretch of log P(token | ALT window, that token masked)
        - sum over REF tokens in the stretch of log P(token | REF window, that token masked)

(Salazar et al. 2020's PLL, restricted to the tokens that differ). Both sums cover the same
bases, so the score compares like with like for SNVs, MNVs and indels; it is averaged over the
two strands when `rc_average` is on, as GPN averages its LLR. With single-base tokens it
reduces to the masked-marginal LLR of an SNV. Windows longer than the model's context are cut
to the context around each masked token.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .errors import GenofmInputError
from .sequence import reverse_complement
from .tokenizer import CLS, MASK, PAD


class MaskedToken(NamedTuple):
    """One masked pass: a tokenized window (`side`: "ref" or the allele's index), token i masked."""

    side: object
    strand: str
    window: object
    token: int


def covering_stretch(ref_spans: np.ndarray, alt_spans: np.ndarray, rel: int, ref_len: int,
                     alt_len: int) -> tuple[int, int]:
    """[s, e) in REF coordinates: the shortest stretch holding bases rel..rel+ref_len whose ends
    are token boundaries of both tokenizations ((n, 2) base spans of each)."""
    shift = alt_len - ref_len
    starts = set(ref_spans[:, 0].tolist()) & set(alt_spans[:, 0].tolist())
    s = max(x for x in starts if x <= rel)  # 0 always qualifies
    alt_ends = set((alt_spans[:, 1] - shift).tolist())
    e = min(x for x in ref_spans[:, 1].tolist() if x >= rel + ref_len and x in alt_ends)  # the window end qualifies
    return s, e


def tokens_within(spans: np.ndarray, s: int, e: int) -> list[int]:
    return np.flatnonzero((spans[:, 0] >= s) & (spans[:, 1] <= e)).tolist()


def pll_difference(scorer, jobs) -> None:
    """Set `pll` on each job's allele (jobs: (allele, window key, window sequence))."""
    strands = ["fwd", "rev"] if scorer.cfg.rc_average else ["fwd"]
    sequences: dict = {}  # (side, strand, window) -> sequence on that strand
    for n, (a, key, seq) in enumerate(jobs):
        rel = a.pos - key.start
        alt_seq = seq[:rel] + a.alt + seq[rel + len(a.ref):]
        for strand in strands:
            orient = reverse_complement if strand == "rev" else (lambda x: x)
            sequences["ref", strand, key] = orient(seq)
            sequences[n, strand, key] = orient(alt_seq)
    tokenized = dict(zip(sequences, scorer.tokenizer.spans_batch(list(sequences.values()),
                                                                 [f"window {k[2].contig}:{k[2].start + 1}-{k[2].end}"
                                                                  for k in sequences])))
    wanted: dict[tuple, tuple[list[MaskedToken], list[MaskedToken]]] = {}
    for n, (a, key, seq) in enumerate(jobs):
        for strand in strands:
            rel = a.pos - key.start if strand == "fwd" else len(seq) - (a.pos - key.start) - len(a.ref)
            (_, ref_spans), (_, alt_spans) = tokenized["ref", strand, key], tokenized[n, strand, key]
            s, e = covering_stretch(ref_spans, alt_spans, rel, len(a.ref), len(a.alt))
            shift = len(a.alt) - len(a.ref)
            wanted[n, strand] = ([MaskedToken("ref", strand, key, i) for i in tokens_within(ref_spans, s, e)],
                                 [MaskedToken(n, strand, key, i) for i in tokens_within(alt_spans, s, e + shift)])
    passes = sorted({p for ref, alt in wanted.values() for p in ref + alt},
                    key=lambda p: (tokenized[p.side, p.strand, p.window][0].size, str(p)))
    logp = masked_token_logliks(scorer, passes, tokenized)
    for n, (a, _, _) in enumerate(jobs):
        per_strand = [sum(logp[p] for p in wanted[n, strand][1]) - sum(logp[p] for p in wanted[n, strand][0])
                      for strand in strands]
        a.scores["pll"] = float(np.mean(per_strand))


@torch.no_grad()
def masked_token_logliks(scorer, passes: list[MaskedToken], tokenized) -> dict[MaskedToken, float]:
    """log P(token i | its window with token i masked), one masked pass each, batched."""
    context, out = scorer.context, {}
    for b in range(0, len(passes), scorer.cfg.batch_size):
        batch = passes[b:b + scorer.cfg.batch_size]
        bodies, rows = [], []
        for p in batch:
            ids = tokenized[p.side, p.strand, p.window][0]
            crop = 0 if ids.size <= context else min(max(0, p.token - context // 2), ids.size - context)
            bodies.append(ids[crop:crop + context])
            rows.append(p.token - crop)
        ids = torch.full((len(batch), 1 + max(body.size for body in bodies)), PAD, dtype=torch.long)
        ids[:, 0] = CLS
        where = torch.zeros_like(ids, dtype=torch.bool)
        targets = []
        for r, (body, j) in enumerate(zip(bodies, rows)):
            ids[r, 1:1 + body.size] = torch.from_numpy(body.astype(np.int64))
            targets.append(int(ids[r, 1 + j]))
            ids[r, 1 + j] = MASK
            where[r, 1 + j] = True
        logits = scorer.forward_logits(ids, where).log_softmax(-1).cpu()  # (B, V)
        scorer.passes["pll"] += len(batch)
        values = logits[torch.arange(len(batch)), torch.tensor(targets)].tolist()
        out.update(zip(batch, values))
    if any(not np.isfinite(v) for v in out.values()):
        raise GenofmInputError("the model gives a masked token no probability (log P = -inf): cannot score")
    return out
