"""What a next-base model knows about proteins once it is told the reading frame.

A reference for the model-quality benchmark, not a zero-shot score: the annotation gives
each coding SNV its codon, and the model gives P(codon | context) for all 64 codons, read
on the coding strand from the bases before the codon and on the template strand from the
bases after it (a product of the two readings). Summing the synonymous codons gives
P(amino acid); an SNV scores log P(ALT amino acid) - log P(REF amino acid), so synonymous
SNVs score exactly 0 and codon usage no longer counts against them. Set beside the
amino-acid usage reference (no context at all), it measures how much the model knows about
which amino acid belongs where.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from genofm.consequence import Cds
from genofm.errors import GenofmInputError
from genofm.model import DNALM
from genofm.sequence import BASES, CODON_INDEX, CODONS, GENETIC_CODE, reverse_complement
from genofm.tokenizer import KmerTokenizer
from tools.coding_references import amino_acid_log_probs, coding_sites

PAIRS = [x + y for x in BASES for y in BASES]  # the first two bases of a codon, in CODONS order


@torch.no_grad()
def codon_log_probs(model: DNALM, tokenizer: KmerTokenizer, prefixes: list[str], batch_size: int = 64) -> np.ndarray:
    """(n, 64): log P(codon | prefix) of a causal single-nucleotide model for each prefix
    (all of one length), codons in CODONS order: 16 passes per prefix, prefix + two bases."""
    if tokenizer.k != 1 or not model.cfg.causal:
        raise GenofmInputError("the amino-acid reference needs a next-token model on single nucleotides")
    if len({len(p) for p in prefixes}) > 1:  # one codon position for the whole batch
        raise ValueError(f"prefixes must be of one length, not {sorted({len(p) for p in prefixes})}")
    base_ids = torch.tensor([int(tokenizer.token_to_id[b]) for b in BASES])
    sequences = [prefix + pair for prefix in prefixes for pair in PAIRS]
    n = len(prefixes[0]) if prefixes else 0  # logits at n predict the codon's first base (<cls> at 0)
    out = np.zeros((len(sequences), 3, 4))  # log P of each base at each codon position
    for b in range(0, len(sequences), batch_size):
        ids = torch.from_numpy(np.stack([tokenizer.encode(s) for s in sequences[b:b + batch_size]]))
        logp = model(ids).logits[:, n:n + 3].log_softmax(-1)  # (B, 3, V)
        out[b:b + len(ids)] = logp[..., base_ids].double().numpy()
    out = out.reshape(len(prefixes), 16, 3, 4)
    first, second = np.divmod(np.arange(16), 4)
    # log P(x) + log P(y | x) + log P(z | x y), for codon x y z = pair p, third base z
    pair_lp = out[:, :, 0, :][:, np.arange(16), first] + out[:, :, 1, :][:, np.arange(16), second]  # (n, 16)
    return (pair_lp[:, :, None] + out[:, :, 2, :]).reshape(len(prefixes), 64)


def model_amino_acid_scores(model: DNALM, tokenizer: KmerTokenizer, genome: str, cds: list[Cds],
                            snvs: pd.DataFrame, context: int = 255, batch_size: int = 64) -> np.ndarray:
    """log P(ALT amino acid) - log P(REF amino acid) of each coding SNV of `snvs` under the
    model, both strands read with `context` bases beside the codon; NaN for intergenic SNVs
    and for codons within `context` of a genome end or with an N beside them."""
    genome = genome.upper()
    scores = np.full(len(snvs), np.nan)
    sites, coding_prefixes, template_prefixes = [], [], []
    for site in coding_sites(genome, cds, snvs):
        start, end = site.codon_start, site.codon_start + 3
        if start < context or end + context > len(genome):
            continue
        before, after = genome[start - context:start], genome[end:end + context]
        if set(before + after) - set(BASES):
            continue
        # coding strand: the bases before the codon; template strand: the bases after it, reversed
        if site.strand == "+":
            coding_prefixes.append(before)
            template_prefixes.append(reverse_complement(after))
        else:
            coding_prefixes.append(reverse_complement(after))
            template_prefixes.append(before)
        sites.append(site)
    if not sites:
        return scores
    coding = codon_log_probs(model, tokenizer, coding_prefixes, batch_size)
    template = codon_log_probs(model, tokenizer, template_prefixes, batch_size)
    # the template strand reads each codon as its reverse complement
    template = template[:, [CODON_INDEX[reverse_complement(c)] for c in CODONS]]
    amino = amino_acid_log_probs(coding + template)
    for i, site in enumerate(sites):
        scores[site.row] = amino[GENETIC_CODE[site.alt]][i] - amino[GENETIC_CODE[site.ref]][i]
    return scores
