"""Zero-shot variant scores from a pretrained model.

- Masked LM: the masked-marginal log-likelihood ratio of GPN generalised to k-mer tokens:
  mask the token holding the variant and read log P(alt token) - log P(ref token) off the
  model's output there (the alt token is the ref k-mer with the variant applied). SNVs, and
  MNVs that stay inside one token. Averaged over both strands when configured.
  Windows sit on a fixed token grid, so every variant in the same token of the same window
  shares one forward pass: saturation mutagenesis costs one pass per token and strand
  (k = 6: 18 SNVs per pass), not one per variant.
- Next-token LM: log-likelihood of the ALT window minus that of the REF window, any variant.
  The REF window runs once; each ALT window only from its first changed token, on the REF
  window's state (`paired_logliks`): a token's log-likelihood depends on the tokens before it.
  With single-nucleotide tokens also the *influence*: the change in log-likelihood of the
  `influence_bases` bases that follow the variant, read on each strand, the more negative of
  the two. It leaves out the variant's own base, whose likelihood mostly reflects local base
  composition (in a GC-rich genome every G/C -> A/T change looks unlikely), and keeps how the
  ALT base upsets the model's expectation of what comes next (an in-frame stop breaks the
  codon and the gene the model was reading). Each strand sees the variant from one side; the
  stronger reading wins because a codon's disruption shows from one side or the other
  depending on where in the codon the variant sits.
- Masked LM over subword tokens (BPE, WordPiece), any variant: the pseudo-log-likelihood
  difference over the tokens covering the variant (`genofm.pll`).
- Any variant, indels too: cosine and L2 distance between the mean embeddings of the REF and
  ALT windows, as the Nucleotide Transformer paper does.
- Alignment-aware models (GPN-MSA): the masked LLR and the embeddings with the window's
  aligned bases as context (the ALT window keeps them; inserted bases have none).

Window: `window` bases (default: the model's whole context), the variant's token central.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pysam
import torch

from .alignment import ABSENT, COMPLEMENT_CODES, AlignedColumns
from .config import ScoringConfig
from .devices import bf16_autocast
from .embed import EmbedConfig, Embedder
from .errors import GenofmInputError
from .model import DNALM
from .pll import pll_difference
from .sequence import reverse_complement
from .subword import SubwordTokenizer
from .tokenizer import CLS, MASK, PAD, KmerTokenizer
from .vcf import SCORED_STATUSES, Allele

log = logging.getLogger(__name__)


class WindowKey(NamedTuple):
    """A scoring window on the reference: contig and 0-based, half-open bounds."""

    contig: str
    start: int
    end: int


class _Job(NamedTuple):
    """One allele to score, its window and the window's sequence."""

    allele: Allele
    window: WindowKey
    seq: str


class _Layout(NamedTuple):
    """A window's body token ids, and each token's start in the window and length in bases."""

    ids: np.ndarray
    starts: list[int]
    lengths: list[int]


class _Strand(NamedTuple):
    """An allele as one strand reads it: the window on that strand, where the allele starts in it
    and its REF and ALT on that strand."""

    name: str  # "fwd" or "rev"
    seq: str
    rel: int
    ref: str
    alt: str


class PassKey(NamedTuple):
    """One masked forward pass: a window on one strand, cropped to the model's context from token
    `crop`, with token `token` masked. `allele` is the job's index when passes are not shared
    (the naive scorer: one pass per variant), None when they are."""

    window: WindowKey
    strand: str
    allele: int | None
    crop: int
    token: int


@dataclass
class _Site:
    """Where one allele is read off a masked pass: the pass's key and the two token ids."""

    key: PassKey
    ref_id: int
    alt_id: int


class VariantScorer:
    def __init__(self, model: DNALM, tokenizer: KmerTokenizer, fasta: pysam.FastaFile, cfg: ScoringConfig,
                 device: str = "cpu", share_passes: bool = True, alignment: AlignedColumns | None = None):
        self.model, self.tokenizer, self.fasta, self.cfg = model.eval(), tokenizer, fasta, cfg
        self.species = getattr(model.cfg, "aligned_species", [])  # an alignment-aware model reads these
        if self.species and alignment is None:
            raise GenofmInputError(f"an alignment-aware model ({', '.join(self.species)}) scores with the genome's "
                                   "alignment: none was given")
        self.alignment = alignment if self.species else None
        self._codes: dict[WindowKey, np.ndarray] = {}
        self.device = torch.device(device)
        self.share_passes = share_passes  # False: one pass per variant (the naive reference scorer)
        self.k = tokenizer.k
        self.subword = isinstance(tokenizer, SubwordTokenizer)  # tokens of varying length: scored by genofm.pll
        self.context = model.cfg.max_len - 1  # body tokens after <cls>
        self.window_tokens = cfg.window // self.k if cfg.window else self.context
        # a subword window is in bases; its tokens (never more than its bases) are cut to the context
        if not 1 <= self.window_tokens <= (self.window_tokens if self.subword else self.context):
            raise GenofmInputError(f"window of {cfg.window} bases does not fit the model's context of "
                                   f"{self.context} tokens of {self.k} bases")
        self.causal = model.cfg.causal
        if cfg.llr and tokenizer.overlapping and not self.causal:
            raise GenofmInputError("the masked LLR needs non-overlapping tokens: with overlapping k-mers a "
                                   "base sits in k tokens; set variant_scoring.llr to false")
        self.embedder = None
        if cfg.embedding:
            embed_cfg = EmbedConfig(layer=cfg.embedding_layer, pooling="mean", rc_average=cfg.rc_average,
                                    batch_tokens=cfg.batch_size * model.cfg.max_len)
            self.embedder = Embedder(model, tokenizer, embed_cfg, device)
        self.passes: Counter = Counter()  # sequences through the model, by score
        self._pooled: list[dict] | None = None  # window vectors lldiff's passes pooled, per strand
        self._kmer_id_range = None if self.subword else (tokenizer.kmer_offset, tokenizer.single_offset)

    @property
    def scores_influence(self) -> bool:
        # k-mer tokens would put bases of the variant's token into "what follows", and shift
        # the token grid after an indel: the influence is defined on single nucleotides only
        return self.cfg.llr and self.causal and self.k == 1 and not self.subword and self.cfg.influence_bases > 0

    @property
    def likelihood_score(self) -> str:
        """The likelihood score this model family gets (README, "Model families")."""
        return "lldiff" if self.causal else "pll" if self.subword else "llr"

    @property
    def score_names(self) -> list[str]:
        names = []
        if self.cfg.llr:
            names.append(self.likelihood_score)
        if self.scores_influence:
            names.append("influence")
        if self.cfg.embedding:
            names += ["emb_cosine", "emb_l2"]
        return names

    # --- windows ------------------------------------------------------------------------

    def window_of(self, a: Allele, length: int) -> tuple[int, int, bool]:
        """(start, end, cut by a contig end) of the allele's window on the token grid."""
        k = self.k
        tokens = self.window_tokens
        grown = len(a.alt) - len(a.ref)
        if grown > 0:  # room for the inserted bases (and leftover single-base tokens)
            tokens = max(1, tokens - (-(-grown // k)) - (k - 1))
        token = (a.pos + (len(a.ref) - 1) // 2) // k  # the grid token holding the variant's middle
        start = (token - tokens // 2) * k
        end = max(start + tokens * k, a.pos + len(a.ref))
        cut = start < 0 or end > length
        return max(0, start), min(end, length), cut

    def prepare(self, alleles: list[Allele]) -> list[_Job]:
        """Windows of the scoreable alleles; sets NEAR_CONTIG_END / N_IN_WINDOW statuses."""
        sequences: dict[WindowKey, str] = {}
        jobs = []
        for a in alleles:
            if a.status not in SCORED_STATUSES:
                continue
            start, end, cut = self.window_of(a, self.fasta.get_reference_length(a.ref_chrom))
            if cut:
                a.status = "NEAR_CONTIG_END"
                if self.cfg.near_contig_end == "skip":
                    continue
            key = WindowKey(a.ref_chrom, start, end)
            if key not in sequences:
                sequences[key] = self.fasta.fetch(a.ref_chrom, start, end).upper()
            seq = sequences[key]
            if seq.count("N") > self.cfg.max_n_fraction * len(seq):
                a.status = "N_IN_WINDOW"
                continue
            a.scores["window"] = f"{a.ref_chrom}:{start + 1}-{end}"
            jobs.append(_Job(a, key, seq))
        return jobs

    def score(self, alleles: list[Allele]) -> None:
        """Fill `allele.scores` for every allele that can be scored."""
        jobs = self.prepare(alleles)
        if not jobs:
            return
        if self.cfg.llr and not self.causal:
            pll_difference(self, jobs) if self.subword else self.masked_llr(jobs)
        if self.cfg.llr and self.causal:
            self.loglik_difference(jobs)
        if self.cfg.embedding:
            self.embedding_distances(jobs)

    # --- masked-marginal LLR ------------------------------------------------------------

    def token_layouts(self, sequences: list[str]) -> list[_Layout]:
        """Body token ids of each window and each token's start and length in bases (one
        tokenizer call for all: per-call overhead dominates on short windows)."""
        if not sequences:
            return []
        ids, offsets = self.tokenizer.encode_batch(sequences, add_special_tokens=False, dtype=np.int64)
        lo, hi = self._kmer_id_range
        lengths = np.where((ids >= lo) & (ids < hi), self.k, 1) if self.k > 1 else np.ones_like(ids)
        starts = np.cumsum(lengths) - lengths
        layouts = []
        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):  # lists: bisect beats numpy per call
            layouts.append(_Layout(ids[a:b], (starts[a:b] - starts[a]).tolist(), lengths[a:b].tolist()))
        return layouts

    def masked_site(self, strand: _Strand, layout: _Layout, window: WindowKey, allele: int | None) -> _Site | None:
        """The pass and token ids scoring the strand's ref->alt; None across tokens."""
        ids, starts, lengths = layout
        j = bisect.bisect_right(starts, strand.rel) - 1
        if strand.rel + len(strand.ref) > starts[j] + lengths[j]:
            return None  # the variant spans two tokens: no single masked token holds it
        token = strand.seq[starts[j]:starts[j] + lengths[j]]
        offset = strand.rel - starts[j]
        alt_token = token[:offset] + strand.alt + token[offset + len(strand.ref):]
        crop = 0 if ids.size <= self.context else min(max(0, j - self.context // 2), ids.size - self.context)
        return _Site(key=PassKey(window, strand.name, allele, crop, j), ref_id=int(ids[j]),
                     alt_id=self.tokenizer.token_to_id[alt_token])

    def masked_llr(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if len(job.allele.ref) == len(job.allele.alt)]
        windows: dict[tuple[WindowKey, str], str] = {}
        for _, key, seq in jobs:
            windows[key, "fwd"] = seq
            if self.cfg.rc_average:
                windows[key, "rev"] = reverse_complement(seq)
        layouts = dict(zip(windows, self.token_layouts(list(windows.values()))))
        sites: list[tuple[Allele, str, _Site]] = []
        bodies: dict[PassKey, np.ndarray] = {}
        for n, (a, key, seq) in enumerate(jobs):
            rel = a.pos - key.start
            strands = [_Strand("fwd", seq, rel, a.ref, a.alt)]
            if self.cfg.rc_average:
                strands.append(_Strand("rev", windows[key, "rev"], len(seq) - rel - len(a.ref),
                                       reverse_complement(a.ref), reverse_complement(a.alt)))
            found = []
            for strand in strands:
                layout = layouts[key, strand.name]
                site = self.masked_site(strand, layout, key, None if self.share_passes else n)
                if site is None:
                    break
                found.append((a, strand.name, site))
                bodies.setdefault(site.key, layout.ids)
            if len(found) == len(strands):
                sites += found
        values = self.run_masked(bodies, sites)
        for a, strand, site in sites:
            a.scores[f"llr_{strand}"] = values[id(site)]
        for a, _, _ in jobs:
            if "llr_fwd" in a.scores:
                a.scores["llr"] = (a.scores["llr_fwd"] + a.scores["llr_rev"]) / 2 if self.cfg.rc_average \
                    else a.scores["llr_fwd"]

    @torch.no_grad()
    def run_masked(self, bodies: dict[PassKey, np.ndarray], sites) -> dict[int, float]:
        """One masked pass per key; returns each site's log P(alt) - log P(ref)."""
        by_key: dict[PassKey, list] = {}
        for _, _, site in sites:
            by_key.setdefault(site.key, []).append(site)
        keys = sorted(by_key, key=lambda key: min(bodies[key].size, self.context))
        out: dict[int, float] = {}
        for b in range(0, len(keys), self.cfg.batch_size):
            batch = keys[b:b + self.cfg.batch_size]
            length = 1 + max(min(bodies[key].size, self.context) for key in batch)
            ids = torch.full((len(batch), length), PAD, dtype=torch.long)
            ids[:, 0] = CLS
            where = torch.zeros_like(ids, dtype=torch.bool)
            aligned = torch.full((len(batch), length, len(self.species)), ABSENT, dtype=torch.uint8) \
                if self.species else None
            for i, key in enumerate(batch):
                crop, j = key.crop, key.token
                body = bodies[key][crop:crop + self.context]
                ids[i, 1:1 + body.size] = torch.from_numpy(body.astype(np.int64))
                ids[i, 1 + j - crop] = MASK
                where[i, 1 + j - crop] = True
                if aligned is not None:  # single-nucleotide tokens: token t is base t of the strand's window
                    codes = self.window_codes(key.window, key.strand == "rev")[crop:crop + body.size]
                    aligned[i, 1:1 + body.size] = torch.from_numpy(np.ascontiguousarray(codes))
            logp = self.forward_logits(ids, where, aligned).log_softmax(-1).cpu()  # (B, V)
            self.passes["llr"] += len(batch)
            batch_sites = [(i, site) for i, key in enumerate(batch) for site in by_key[key]]
            rows = torch.tensor([i for i, _ in batch_sites])
            alt_ids = torch.tensor([site.alt_id for _, site in batch_sites])
            ref_ids = torch.tensor([site.ref_id for _, site in batch_sites])
            for (_, site), value in zip(batch_sites, (logp[rows, alt_ids] - logp[rows, ref_ids]).tolist()):
                out[id(site)] = value
        return out

    def forward_logits(self, ids: torch.Tensor, where: torch.Tensor | None = None,
                       aligned: torch.Tensor | None = None) -> torch.Tensor:
        ids = ids.to(self.device)
        extra = {} if aligned is None else {"aligned": aligned.to(self.device)}
        with bf16_autocast(self.device):
            logits = self.model(ids, logits_at=None if where is None else where.to(self.device), **extra).logits
        return logits.float()

    def window_codes(self, window: WindowKey, reverse: bool = False) -> np.ndarray:
        """(bases, S) alignment codes of the aligned species over a window, on the strand read."""
        if window not in self._codes:
            self._codes[window] = self.alignment.species_codes(window.contig, window.start, window.end, self.species)
        codes = self._codes[window]
        return COMPLEMENT_CODES[codes[::-1]] if reverse else codes

    # --- next-token log-likelihood ------------------------------------------------------

    @torch.no_grad()
    def token_logliks(self, sequences: list[str]) -> list[np.ndarray]:
        """log P(token | tokens before it) of each token after <cls>, per sequence (first
        max_len tokens): with 1-mers, entry i belongs to base i."""
        encoded = self.encode_windows(sequences)
        order = sorted(range(len(encoded)), key=lambda i: encoded[i].size)
        out: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        for b in range(0, len(order), self.cfg.batch_size):
            batch = order[b:b + self.cfg.batch_size]
            ids = padded([encoded[i] for i in batch])
            logp = self.forward_logits(ids).log_softmax(-1).cpu()  # (B, L, V)
            token_logp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0].double().numpy()  # (B, L-1)
            for r, i in enumerate(batch):
                out[i] = token_logp[r, :encoded[i].size - 1]
            self.passes["lldiff"] += len(batch)
        return out

    def encode_windows(self, sequences: list[str]) -> list[np.ndarray]:
        """Each window's token ids, cut to the model's context (a subword window must fit it)."""
        encoded = [self.tokenizer.encode(s) for s in sequences]
        if self.subword and any(e.size > self.model.cfg.max_len for e in encoded):
            raise GenofmInputError(f"a window of {max(map(len, sequences))} bases takes more tokens than the model's "
                                   f"context of {self.context}: set variant_scoring.window to fewer bases")
        return [e[:self.model.cfg.max_len] for e in encoded]

    @property
    def reuses_prefix(self) -> bool:
        """Next-token models that can continue from a prefix (genofm's own, Hugging Face ones with a
        key/value cache) run each ALT window only from its first changed token, on the REF
        window's state; the naive scorer runs it whole."""
        return self.causal and self.share_passes and hasattr(self.model, "forward_from") and not self.species

    @property
    def pools_while_scoring(self) -> bool:
        """genofm's own next-token models give the embedding distances' window vectors (the
        output states, averaged) from the passes of lldiff: no passes of their own."""
        return (self.reuses_prefix and self.cfg.llr and self.embedder is not None and isinstance(self.model, DNALM)
                and self.cfg.embedding_layer == -1)

    @torch.no_grad()
    def paired_logliks(self, ref_texts: dict, alt_texts: list[str], alt_keys: list,
                       pooled: dict | None = None) -> tuple[dict, list[np.ndarray]]:
        """token_logliks of each REF window (by key) and of each ALT window, the ALT windows run
        from their first token that differs from their REF window's: a token's log-likelihood
        depends only on the tokens before it, so those before that token are the REF's.
        pooled: a dict that gets each window's output states averaged ("ref": {key: (D,)}, "alt":
        {job: (D,)}), as Embedder pools them (genofm's own models only)."""
        size = self.cfg.batch_size
        ref_ids = dict(zip(ref_texts, self.encode_windows(list(ref_texts.values()))))
        alt_ids = self.encode_windows(alt_texts)
        jobs_of = defaultdict(list)
        for j, key in enumerate(alt_keys):
            jobs_of[key].append(j)
        keys = sorted(ref_ids, key=lambda key: ref_ids[key].size)
        ref_lp: dict = {}
        alt_lp: list[np.ndarray] = [np.zeros(0)] * len(alt_ids)
        whole = []  # ALT windows of models that keep no state to continue from: run whole
        for b in range(0, len(keys), size):
            batch = keys[b:b + size]
            ids = padded([ref_ids[key] for key in batch]).to(self.device)
            with bf16_autocast(self.device):
                logits, state = self.model.forward_with_state(ids)
            logp = logits.float().log_softmax(-1)  # (B, L, V)
            token_logp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0].double().cpu().numpy()  # (B, L-1)
            for r, key in enumerate(batch):
                ref_lp[key] = token_logp[r, :ref_ids[key].size - 1]
            self.passes["lldiff"] += len(batch)
            if pooled is not None:
                with bf16_autocast(self.device):
                    ref_last = self.model.norm(state[-1])  # (B, L, D): forward's last_hidden
                ref_last = ref_last.float().cpu()
                for r, key in enumerate(batch):
                    pooled["ref"][key] = ref_last[r, :ref_ids[key].size].mean(0)
            pending, last = [], None  # (first changed token, ALT job, REF row); the ALT windows' output states
            for r, key in enumerate(batch):
                if state is None:
                    whole += jobs_of[key]
                    continue
                for j in jobs_of[key]:
                    alt, ref = alt_ids[j], ref_ids[key]
                    n = min(alt.size, ref.size)
                    changed = np.flatnonzero(alt[:n] != ref[:n])
                    first = int(changed[0]) if changed.size else n
                    if first >= alt.size:  # the ALT window is the REF window's beginning
                        alt_lp[j] = ref_lp[key][:alt.size - 1]
                        if pooled is not None:
                            pooled["alt"][j] = ref_last[r, :alt.size].mean(0)
                    elif first == 0:  # no <cls> slot (a tokenizer without one) and the first base changed
                        whole.append(j)
                    else:
                        pending.append((first, j, r))
            pending.sort()
            for c in range(0, len(pending), size):
                chunk = pending[c:c + size]
                start = chunk[0][0]  # the chunk's earliest change: every row shares its REF's tokens before it
                rows = torch.tensor([r for _, _, r in chunk], device=self.device)
                alt = padded([alt_ids[j] for _, j, _ in chunk]).to(self.device)
                with bf16_autocast(self.device):
                    prefix = self.model.prefix_state(state, rows, start)
                    if pooled is None:
                        logits = self.model.forward_from(alt, start, prefix)
                    else:  # genofm's own models: their output states too
                        logits, last = self.model.forward_from(alt, start, prefix, return_hidden=True)
                        last = last.float().cpu()  # (n, L - start, D)
                suffix = logits.float().log_softmax(-1)[:, :-1].gather(-1, alt[:, start + 1:, None])[..., 0]
                # the token at `start` is read off the REF's output before it (the same context)
                at_start = logp[rows, start - 1].gather(-1, alt[:, start, None])  # (n, 1)
                values = torch.cat([at_start, suffix], 1).double().cpu().numpy()  # entries start-1 ..
                for i, (_, j, r) in enumerate(chunk):
                    length = alt_ids[j].size
                    alt_lp[j] = np.concatenate([ref_lp[batch[r]][:start - 1], values[i, :length - start]])
                    self.passes["lldiff"] += (length - start) / length
                    if pooled is not None:
                        pooled["alt"][j] = torch.cat([ref_last[r, :start], last[i, :length - start]]).mean(0)
            del logits, state, logp, last  # before the next batch's: one batch's states at a time
        for j, lp in zip(whole, self.token_logliks([alt_texts[j] for j in whole])):
            alt_lp[j] = lp
        return ref_lp, alt_lp

    def loglik_difference(self, jobs: list[_Job]) -> None:
        """lldiff (both strands averaged when rc_average) and, for 1-mers, the influence."""
        strands = [False] + ([True] if self.cfg.rc_average else [])
        ref_keys = sorted({key for _, key, _ in jobs})
        ref_seq = {key: seq for _, key, seq in jobs}
        total = np.zeros(len(jobs))
        influence = np.full(len(jobs), np.inf)
        n = self.cfg.influence_bases
        self._pooled = [] if self.pools_while_scoring else None  # each strand's window vectors
        for reverse in strands:
            orient = reverse_complement if reverse else (lambda s: s)
            alt_texts = [orient(alt_window(a, key, seq)) for a, key, seq in jobs]
            if self.reuses_prefix:
                pooled = None if self._pooled is None else {"ref": {}, "alt": {}}
                ref_lp, alt_lp = self.paired_logliks({key: orient(ref_seq[key]) for key in ref_keys}, alt_texts,
                                                     [key for _, key, _ in jobs], pooled)
                if pooled is not None:
                    self._pooled.append(pooled)
            else:
                ref_lp = dict(zip(ref_keys, self.token_logliks([orient(ref_seq[key]) for key in ref_keys])))
                alt_lp = self.token_logliks(alt_texts)
            for j, (a, key, seq) in enumerate(jobs):
                ref, alt = ref_lp[key], alt_lp[j]
                total[j] += float(alt.sum()) - float(ref.sum())
                if self.scores_influence:
                    # the bases after the variant in this strand's reading direction: after the
                    # allele on the forward strand, before it (in genome order) on the reverse
                    rel = a.pos - key.start
                    alt_length = len(seq) - len(a.ref) + len(a.alt)  # before any cut to the context
                    if reverse:
                        ref_from, alt_from, count = len(seq) - rel, alt_length - rel, rel
                    else:
                        ref_from, alt_from, count = rel + len(a.ref), rel + len(a.alt), len(seq) - rel - len(a.ref)
                    count = max(0, min(n, count, len(alt) - alt_from))  # an insertion longer than the context is cut
                    change = float(alt[alt_from:alt_from + count].sum()) - float(ref[ref_from:ref_from + count].sum())
                    influence[j] = min(influence[j], change)
        for j, (a, _, _) in enumerate(jobs):
            a.scores["lldiff"] = float(total[j] / len(strands))
            if self.scores_influence:
                a.scores["influence"] = float(influence[j])

    # --- embedding distances ------------------------------------------------------------

    def embedding_distances(self, jobs: list[_Job]) -> None:
        ref_keys = sorted({key for _, key, _ in jobs})
        ref_seq = {key: seq for _, key, seq in jobs}
        strands = 2 if self.cfg.rc_average else 1
        ref_codes = alt_codes = None
        if self.species:  # the ALT window keeps the aligned bases; inserted bases have none
            ref_codes = [self.window_codes(key) for key in ref_keys]
            alt_codes = [alt_window_codes(a, key, self.window_codes(key)) for a, key, _ in jobs]
        if self._pooled:  # lldiff's passes pooled them
            ref_vectors, alt_vectors = self.vectors_from_scoring(jobs, ref_keys)
        else:
            ref_vectors = self.embedder.embed_sequences([ref_seq[key] for key in ref_keys], aligned=ref_codes)
            alt_vectors = self.embedder.embed_sequences([alt_window(a, key, seq) for a, key, seq in jobs],
                                                        aligned=alt_codes)
            self.passes["embedding"] += strands * (len(ref_keys) + len(jobs))
        row = {key: i for i, key in enumerate(ref_keys)}
        ref = ref_vectors[[row[key] for _, key, _ in jobs]]  # (n, D)
        cosine = 1 - torch.nn.functional.cosine_similarity(ref, alt_vectors, dim=-1)
        l2 = (ref - alt_vectors).norm(dim=-1)
        for (a, _, _), c, d in zip(jobs, cosine.tolist(), l2.tolist()):
            a.scores["emb_cosine"], a.scores["emb_l2"] = max(0.0, c), d

    def vectors_from_scoring(self, jobs: list[_Job], ref_keys: list) -> tuple[torch.Tensor, torch.Tensor]:
        """The REF and ALT window vectors lldiff's passes pooled, both strands averaged as the
        embedder does (genofm's models run no window whole: every one has its vector)."""
        strands, self._pooled = self._pooled, None
        ref = torch.stack([sum(p["ref"][key] for p in strands) / len(strands) for key in ref_keys])
        alt = torch.stack([sum(p["alt"][j] for p in strands) / len(strands) for j in range(len(jobs))])
        return ref, alt


def padded(sequences: list[np.ndarray]) -> torch.Tensor:
    """(B, longest) token ids, PAD after each sequence's end."""
    ids = torch.full((len(sequences), max(s.size for s in sequences)), PAD, dtype=torch.long)
    for r, s in enumerate(sequences):
        ids[r, :s.size] = torch.from_numpy(s.astype(np.int64))
    return ids


def alt_window(a: Allele, key: WindowKey, seq: str) -> str:
    """The window's sequence with the allele applied."""
    rel = a.pos - key.start
    return seq[:rel] + a.alt + seq[rel + len(a.ref):]


def alt_window_codes(a: Allele, key: WindowKey, codes: np.ndarray) -> np.ndarray:
    """The window's alignment codes as alt_window lays out its bases: the ALT's bases get the
    REF's codes where they replace them, ABSENT where inserted."""
    rel, n_ref, n_alt = a.pos - key.start, len(a.ref), len(a.alt)
    middle = np.full((n_alt, codes.shape[1]), ABSENT, dtype=codes.dtype)
    shared = min(n_ref, n_alt)
    middle[:shared] = codes[rel:rel + shared]
    return np.concatenate([codes[:rel], middle, codes[rel + n_ref:]])
