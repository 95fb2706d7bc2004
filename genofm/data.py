"""Training windows from token sets, and the masked-LM / next-token objectives.

Every random choice is drawn from a generator seeded by (seed, step, micro-batch index), so a
batch depends only on where training is, not on what ran before: a resumed run and a run
split over several processes see exactly the batches of a single uninterrupted one.

Alignment-aware models also get, for each window, the bases other species align to each of its
positions (`aligned_windows`): with single-nucleotide tokens, body token i of a region is base
start + i on the '+' strand and end - 1 - i, complemented, on the '-' strand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .alignment import ABSENT, COMPLEMENT_CODES, AlignedColumns
from .errors import GenofmInputError
from .sequence import reverse_complement
from .subword import SubwordTokenizer
from .tokenizer import CLS, MASK, PAD, KmerTokenizer
from .tokens import load_token_set

IGNORE = -100  # label of positions that carry no loss


@dataclass
class Pool:
    """The regions of one genome's token sets, as (start, length) of their bodies."""

    name: str
    tokens: list[np.ndarray]  # memory-mapped token arrays, one per set
    set_of_region: np.ndarray
    starts: np.ndarray  # first body token (after <cls>) of each region, within its set
    lengths: np.ndarray
    index: pd.DataFrame  # each region's chrom, start, end, strand (row i: region i)
    set_weights: np.ndarray | None = None  # per set: relative draws per token (None: all 1)

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    def region_probabilities(self) -> np.ndarray:
        """Each region's chance of being drawn: its token count times its set's weight."""
        mass = self.lengths.astype(float)
        if self.set_weights is not None:
            mass = mass * self.set_weights[self.set_of_region]
        return mass / mass.sum()


def load_pool(name: str, directories: list[str | Path], min_tokens: int = 2,
              set_weights: list[float] | None = None) -> tuple[Pool, KmerTokenizer]:
    """All regions of the given token sets; errors for empty or unusable sets. `set_weights`
    (one per set) scale how often each set's tokens are drawn."""
    if not directories:
        raise GenofmInputError(f"genome {name!r}: no token sets given")
    if set_weights is not None and (len(set_weights) != len(directories) or min(set_weights) <= 0):
        raise GenofmInputError(f"genome {name!r}: {len(directories)} token sets need as many positive weights, "
                               f"got {set_weights}")
    tokens, set_ids, starts, lengths, indexes, tokenizer = [], [], [], [], [], None
    for i, directory in enumerate(directories):
        ts = load_token_set(directory)
        if tokenizer is None:
            tokenizer = ts.tokenizer
        elif ts.tokenizer.spec != tokenizer.spec:
            raise GenofmInputError(f"{directory}: tokenized with {ts.tokenizer.spec}, unlike {directories[0]}")
        skip = 1 if ts.tokenizer.spec.add_cls else 0
        body_start = ts.offsets[:-1] + skip
        body_len = ts.offsets[1:] - body_start
        keep = body_len >= 1
        if not keep.any():
            raise GenofmInputError(f"{directory}: no region has any token to train on")
        tokens.append(ts.tokens)
        set_ids.append(np.full(int(keep.sum()), i))
        starts.append(body_start[keep])
        lengths.append(body_len[keep])
        indexes.append(ts.index.loc[keep, ["chrom", "start", "end", "strand"]].assign(set=str(directory)))
    pool = Pool(name, tokens, np.concatenate(set_ids), np.concatenate(starts), np.concatenate(lengths),
                pd.concat(indexes, ignore_index=True),
                None if set_weights is None else np.asarray(set_weights, dtype=float))
    if pool.n_tokens < min_tokens:
        raise GenofmInputError(f"genome {name!r}: the token sets hold only {pool.n_tokens} tokens, "
                               f"too few to train on ({', '.join(map(str, directories))})")
    return pool, tokenizer


def sample_windows(pools: list[Pool], weights: np.ndarray, n: int, length: int,
                   rng: np.random.Generator) -> np.ndarray:
    """(n, length) int64 windows: <cls> then length-1 tokens of a random region, padded."""
    return window_tokens(pools, draw_windows(pools, weights, n, length, rng), length)


def draw_windows(pools: list[Pool], weights: np.ndarray, n: int, length: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(n, 4) int64: each window's pool, region, first body token in the region and token count.

    The genome is drawn by weight, the region in proportion to its token count times its set's
    weight, the offset uniformly among the positions where the window fits (or 0 for a short
    region).
    """
    out = np.zeros((n, 4), dtype=np.int64)
    genome = rng.choice(len(pools), size=n, p=weights / weights.sum())
    body = length - 1
    for g in np.unique(genome):
        rows = np.flatnonzero(genome == g)
        pool = pools[g]
        region = rng.choice(len(pool.lengths), size=rows.size, p=pool.region_probabilities())
        room = np.maximum(pool.lengths[region] - body, 0)
        offset = (rng.random(rows.size) * (room + 1)).astype(np.int64)
        out[rows] = np.stack([np.full(rows.size, g), region, offset, np.minimum(pool.lengths[region], body)], 1)
    return out


def window_tokens(pools: list[Pool], draws: np.ndarray, length: int) -> np.ndarray:
    """(n, length) int64 token windows of `draws` (draw_windows): <cls>, the tokens, padding."""
    out = np.full((len(draws), length), PAD, dtype=np.int64)
    out[:, 0] = CLS
    for row, (g, r, o, t) in enumerate(draws.tolist()):
        pool = pools[g]
        start = pool.starts[r] + o
        out[row, 1:1 + t] = pool.tokens[pool.set_of_region[r]][start:start + t]
    return out


def aligned_windows(pools: list[Pool], draws: np.ndarray, length: int, alignments: list[AlignedColumns],
                    species: list[str]) -> np.ndarray:
    """(n, length, S) uint8: the codes `species` align to each body token of the windows of
    `draws` (single-nucleotide tokens), on the window's strand; ABSENT at <cls> and padding."""
    out = np.full((len(draws), length, len(species)), ABSENT, dtype=np.uint8)
    for row, (g, r, o, t) in enumerate(draws.tolist()):
        chrom, start, end, strand = pools[g].index.iloc[r][["chrom", "start", "end", "strand"]]
        if strand == "-":
            out[row, 1:1 + t] = alignments[g].species_codes(chrom, end - o - t, end - o, species, reverse=True)
        else:
            out[row, 1:1 + t] = alignments[g].species_codes(chrom, start + o, start + o + t, species)
    return out


def check_single_bases(pool: Pool, tokenizer: KmerTokenizer) -> None:
    """An alignment-aware model maps token i of a region to base i: single-nucleotide tokens,
    regions whose sequence is the reference interval."""
    if tokenizer.k != 1 or tokenizer.overlapping or isinstance(tokenizer, SubwordTokenizer):
        raise GenofmInputError(f"genome {pool.name!r}: an alignment-aware model needs single-nucleotide tokens "
                               f"(tokenizer.k: 1), not {tokenizer.spec}")
    spans = (pool.index["end"] - pool.index["start"]).to_numpy()
    wrong = np.flatnonzero(spans != pool.lengths)
    if wrong.size:
        region = pool.index.iloc[wrong[0]]
        raise GenofmInputError(f"{region['set']}: region {region['chrom']}:{region['start']}-{region['end']} has "
                               f"{pool.lengths[wrong[0]]} tokens for {spans[wrong[0]]} bases: its tokens cannot be "
                               "placed on the alignment")


def reverse_complement_aligned(aligned: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The aligned codes of windows flipped by reverse_complement_tokens (same real positions)."""
    out = aligned.copy()
    real = (ids != PAD) & (ids != CLS)
    for row in range(ids.shape[0]):
        positions = np.flatnonzero(real[row])
        out[row, positions] = COMPLEMENT_CODES[aligned[row, positions[::-1]]]
    return out


def reverse_complement_tokens(ids: np.ndarray, tokenizer: KmerTokenizer) -> np.ndarray:
    """The reverse strand of each window, keeping <cls> first and padding last.

    Each token becomes its reverse-complement token and the order is reversed: a valid
    tokenization of the reverse strand (k-mer boundaries stay where they were). Subword (BPE)
    tokens have no such mirror: their window's bases are reverse-complemented and tokenized
    afresh, cut to the window (the reverse strand may take more or fewer tokens).
    """
    if isinstance(tokenizer, SubwordTokenizer):
        return retokenized_reverse_complement(ids, tokenizer)
    table = rc_token_table(tokenizer)
    out = ids.copy()
    real = (ids != PAD) & (ids != CLS)
    for row in range(ids.shape[0]):
        positions = np.flatnonzero(real[row])
        out[row, positions] = table[ids[row, positions[::-1]]]
    return out


def retokenized_reverse_complement(ids: np.ndarray, tokenizer: SubwordTokenizer) -> np.ndarray:
    """reverse_complement_tokens for subword tokens: <cls>, the reverse strand's own tokens, padding."""
    out = np.full_like(ids, PAD)
    out[:, 0] = CLS
    real = (ids != PAD) & (ids != CLS)
    sequences = [reverse_complement(tokenizer.decode(row[keep])) for row, keep in zip(ids, real)]
    flipped, offsets = tokenizer.encode_batch(sequences, add_special_tokens=False, dtype=np.int64)
    for row in range(ids.shape[0]):
        body = flipped[offsets[row]:offsets[row + 1]][:ids.shape[1] - 1]
        out[row, 1:1 + body.size] = body
    return out


def rc_token_table(tokenizer: KmerTokenizer) -> np.ndarray:
    table = np.arange(tokenizer.vocab_size, dtype=np.int64)
    for i in range(tokenizer.kmer_offset, tokenizer.vocab_size):
        table[i] = tokenizer.token_to_id[reverse_complement(tokenizer.vocab[i])]
    return table


def mask_for_mlm(ids: torch.Tensor, tokenizer: KmerTokenizer, prob: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: `prob` of the real tokens are predicted; of those 80% become <mask>,
    10% a random token, 10% stay. Special tokens and padding are never chosen."""
    candidates = ids >= tokenizer.kmer_offset
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & candidates
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = MASK
    randomise = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(tokenizer.kmer_offset, tokenizer.vocab_size, ids.shape, generator=generator)
    inputs[randomise] = random_ids[randomise]
    return inputs, labels


def next_token_labels(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels for next-token prediction: label[t] = ids[t + 1], padding ignored."""
    labels = torch.full_like(ids, IGNORE)
    labels[:, :-1] = ids[:, 1:]
    labels[labels == PAD] = IGNORE
    return ids, labels


def unigram_entropy(pools: list[Pool], weights: np.ndarray, tokenizer: KmerTokenizer,
                    max_tokens: int = 20_000_000) -> float:
    """Entropy (nats) of the token frequencies, weighted by genome: the loss a model that
    ignores context would reach. Computed on at most `max_tokens` tokens per genome."""
    total = np.zeros(tokenizer.vocab_size)
    for pool, w in zip(pools, weights / weights.sum()):
        counts = np.zeros(tokenizer.vocab_size)
        budget = max_tokens
        for tokens in pool.tokens:
            chunk = np.asarray(tokens[:budget])
            counts += np.bincount(chunk, minlength=tokenizer.vocab_size)[: tokenizer.vocab_size]
            budget -= chunk.size
            if budget <= 0:
                break
        counts[: tokenizer.kmer_offset] = 0
        total += w * counts / max(counts.sum(), 1)
    p = total[total > 0]
    return float(-(p * np.log(p)).sum())
