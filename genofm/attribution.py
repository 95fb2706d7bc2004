"""Attributions of a region set (gradients or saturation mutagenesis), as per-base maps that
motif discovery reads.

The model reads k-mer tokens, not one-hot bases, so the per-base map is built in the token
embedding space. With g_t the gradient of the target with respect to token t's input
embedding, every single-base substitution is scored by its first-order effect

    effect(p, b) = sum over the tokens t holding base p of  g_t . (E[t with base p -> b] - E[t])

(overlapping k-mers: every token that holds the base). With k=1 this is exactly input x
gradient on one-hot bases (the embedding layer is a linear map of the one-hot base). The four
effects of a position, mean-centred, are its hypothetical contributions (TF-MoDISco's input);
the contribution of the base present is its channel of them.

ISM (in-silico saturation mutagenesis) needs no gradient: effect(p, b) is the exact change of
the target when base p becomes b, each substituted sequence tokenized and run (3L + 1 forward
passes per region and strand). It is what the gradients approximate, and the way out when a
model's gradients do not show what it reads (a fine-tuned deep model's can point elsewhere).

Two gradients: input x gradient (the gradient at the input) and integrated gradients (the
gradient averaged along the straight path from a baseline to the input embeddings, by
Gauss-Legendre quadrature; token-level attributions (x - x') . g then sum to f(x) - f(x')).
The baseline replaces each base-bearing token by the mean embedding of its kind (all k-mers,
or the four single bases): "a uniformly random base everywhere"; <cls>, N and padding keep
their own embeddings.

Targets (a scalar per region):
- `HeadTarget`: a trained probe head (genofm.heads.ProbeHead) on the region's pooled
  embedding, pooled as the head was trained (layer, mean / cls / center, reverse strand
  averaged in). Classification: the log-odds log p_c / (1 - p_c) of one class; regression:
  the value.
- `FinetuneTarget`: a saved fine-tune (model, adapters and head trained end to end), as its
  variant effects read it: a class's log-odds or the value, both strands averaged.
- `LikelihoodTarget`: the language model's log-likelihood of the region's tokens. Causal
  models: the exact sum of log p(x_t | x_<t). Masked models: a pseudo-log-likelihood in
  `mask_groups` passes, each masking every mask_groups-th token (sum of log p of the masked
  tokens; with mask_groups = L it is the usual PLL). The tokens whose probability is read are
  held fixed: the attribution is that of the context.

Shapes: B regions in a batch, T tokens (<cls> first, padded), D d_model, L bases, M
base-in-token slots of a batch.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import AttributionSettings
from .errors import GenofmInputError
from .heads import ProbeHead
from .model import DNALM
from .sequence import reverse_complement
from .tokenizer import CLS, MASK, PAD, KmerTokenizer

log = logging.getLogger(__name__)

ACGT = "ACGT"  # output channel order (one-hot, contributions, JASPAR)
CODE_TO_CHANNEL = np.array([0, 3, 1, 2])  # tokenizer base codes A T C G -> channels A C G T
CODE_COMPLEMENT = np.array([1, 0, 3, 2, 4])  # A<->T, C<->G, N
_BYTE_TO_CODE = np.full(256, 255, dtype=np.uint8)
for _code, _base in enumerate("ATCGN"):
    _BYTE_TO_CODE[ord(_base)] = _BYTE_TO_CODE[ord(_base.lower())] = _code


# --- running the model from given token embeddings --------------------------------------------

@contextlib.contextmanager
def embeddings_fed(model: DNALM, embeddings: torch.Tensor):
    """Inside the block, model.embed returns `embeddings` (B, T, D) whatever ids it gets, so the
    rest of the forward pass (positions, padding mask from the ids) runs unchanged."""
    handle = model.embed.register_forward_hook(lambda module, args, out: embeddings)
    try:
        yield
    finally:
        handle.remove()


def head_output(head: ProbeHead, logits: torch.Tensor, class_index: int | None) -> torch.Tensor:
    """(B,) the value (regression) or the log-odds of class `class_index`."""
    if head.output == "identity":
        return logits[:, 0]
    if head.output == "logistic":  # one logit: the log-odds of the second class
        return logits[:, 0] if class_index == 1 else -logits[:, 0]
    return class_log_odds(logits, class_index)


def class_log_odds(logits: torch.Tensor, c: int) -> torch.Tensor:
    """(B,) log p_c / (1 - p_c) from (B, C) softmax logits."""
    others = torch.cat([logits[:, :c], logits[:, c + 1:]], dim=1)
    return logits[:, c] - torch.logsumexp(others, dim=1)


def pooling_weights(lengths: list[int], width: int, pooling: str, center_tokens: int) -> torch.Tensor:
    """(B, T) weights that pool token states as genofm.embed.Embedder does for a region that
    fits the context: mean over <cls> and the body, <cls> alone, or a central window."""
    weights = torch.zeros(len(lengths), width)
    for i, n in enumerate(lengths):  # n body tokens after <cls>
        if pooling == "mean":
            weights[i, :n + 1] = 1.0 / (n + 1)
        elif pooling == "cls":
            weights[i, 0] = 1.0
        else:
            half, mid = center_tokens // 2, n // 2
            kept = list(range(n))[max(0, mid - half):mid - half + center_tokens]
            weights[i, [1 + j for j in kept]] = 1.0 / len(kept)
    return weights


class HeadTarget:
    """A trained probe head on the pooled embedding (pooled as recorded in head.json)."""

    def __init__(self, head: ProbeHead, class_name: str | None = None):
        self.head = head
        embedding = head.meta.get("embedding", {})
        self.layer = int(embedding.get("layer", -1))
        self.pooling = embedding.get("pooling", "mean")
        self.center_tokens = int(embedding.get("center_tokens", 16))
        self.rc_average = bool(embedding.get("rc_average", False))
        self.class_index = None
        if head.objective == "classification":
            if class_name is None:
                class_name = head.classes[-1]
            if class_name not in head.classes:
                raise GenofmInputError(f"class {class_name!r} is not one of the head's classes "
                                       f"({', '.join(head.classes)})")
            self.class_index = head.classes.index(class_name)
        self.label = ("value" if head.objective == "regression"
                      else f"log-odds of class {head.classes[self.class_index]}")

    def __call__(self, model: DNALM, ids: torch.Tensor, embeddings: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        if not -1 <= self.layer <= model.cfg.n_layers:
            raise GenofmInputError(f"the head pools layer {self.layer}; the model has layers 0..{model.cfg.n_layers}")
        with embeddings_fed(model, embeddings):
            out = model(ids, output_hidden_states=self.layer != -1, return_logits=False)
        states = out.last_hidden if self.layer == -1 else out.hidden_states[self.layer]  # (B, T, D)
        weights = pooling_weights(lengths, ids.shape[1], self.pooling, self.center_tokens).to(states)
        pooled = torch.einsum("bt,btd->bd", weights, states)  # (B, D)
        return head_output(self.head, self.head.logits(pooled.double()), self.class_index)


class FinetuneTarget:
    """A saved fine-tune (genofm.finetuned.FinetunedHead: the model, its adapters and its head,
    trained end to end) on the region's tokens, both strands averaged as its variant effects
    are: a class's log-odds, or the value in the label's units."""

    rc_average = True

    def __init__(self, finetuned, class_name: str | None = None):
        self.finetuned = finetuned
        for p in finetuned.model.parameters():  # gradients only to the inputs
            p.requires_grad_(False)
        self.class_index = None
        if finetuned.objective == "classification":
            class_name = finetuned.classes[-1] if class_name is None else class_name
            if class_name not in finetuned.classes:
                raise GenofmInputError(f"class {class_name!r} is not one of the fine-tune's classes "
                                       f"({', '.join(finetuned.classes)})")
            self.class_index = finetuned.classes.index(class_name)
        self.label = ("value" if self.class_index is None
                      else f"log-odds of class {finetuned.classes[self.class_index]} (fine-tune)")

    def __call__(self, model: DNALM, ids: torch.Tensor, embeddings: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        with embeddings_fed(model, embeddings):
            logits = self.finetuned.model(ids).float()  # (B, C); the classifier pools and masks as in training
        if self.class_index is None:
            target = self.finetuned.meta["target"]
            return logits[:, 0] * target["sd"] + target["mean"]
        return class_log_odds(logits, self.class_index)


class LikelihoodTarget:
    """The LM's (pseudo-)log-likelihood of the region's tokens, <cls> and padding excluded."""

    label = "log-likelihood"

    def __init__(self, mask_groups: int = 4):
        self.mask_groups = mask_groups
        self.rc_average = False

    def __call__(self, model: DNALM, ids: torch.Tensor, embeddings: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        real = (ids != PAD) & (ids != CLS)  # (B, T) tokens whose probability counts
        if model.cfg.causal:
            with embeddings_fed(model, embeddings):
                logits = model(ids).logits[:, :-1]  # (B, T-1, V): position t predicts t+1
            logp = F.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            return (logp * real[:, 1:]).sum(1)
        total = torch.zeros(ids.shape[0], dtype=torch.float32, device=ids.device)
        position = torch.arange(ids.shape[1], device=ids.device)
        mask_row = model.embed.weight[MASK]  # (D,)
        for group in range(self.mask_groups):
            masked = real & (position % self.mask_groups == group)  # (B, T)
            fed = torch.where(masked[..., None], mask_row, embeddings)  # the masked tokens are not seen
            with embeddings_fed(model, fed):
                logits = model(torch.where(masked, MASK, ids)).logits  # (B, T, V)
            logp = F.log_softmax(logits.float(), dim=-1).gather(-1, ids[..., None])[..., 0]
            total = total + (logp * masked).sum(1)
        return total


# --- tokens and bases ---------------------------------------------------------------------

def base_codes(sequence: str, name: str) -> np.ndarray:
    """Tokenizer base codes (A T C G N = 0..4) of a sequence."""
    codes = _BYTE_TO_CODE[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
    if (codes == 255).any():
        pos = int(np.flatnonzero(codes == 255)[0])
        raise GenofmInputError(f"region {name}: character {sequence[pos]!r} at position {pos + 1} is not ACGTN")
    return codes


def token_layout(tokenizer: KmerTokenizer, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first base, number of bases) of each body token, in the tokenizer's order: the sequence
    is cut at each N, each piece into k-mers (left to right, or at every start if overlapping),
    then the leftover single bases; each N is its own token."""
    k, starts, sizes = tokenizer.k, [], []
    n_pos = np.flatnonzero(codes == 4)
    bounds = [-1, *n_pos.tolist(), codes.size]
    for left, right in zip(bounds[:-1], bounds[1:]):
        lo, length = left + 1, right - left - 1
        if k > 1 and length >= k:
            n_kmers = length - k + 1 if tokenizer.overlapping else length // k
            step = 1 if tokenizer.overlapping else k
            starts.append(lo + step * np.arange(n_kmers))
            sizes.append(np.full(n_kmers, k))
            done = length if tokenizer.overlapping else n_kmers * k
        else:
            done = 0
        starts.append(np.arange(lo + done, right))  # leftover single bases
        sizes.append(np.ones(right - lo - done, dtype=np.int64))
        if right < codes.size:  # the N itself
            starts.append(np.array([right]))
            sizes.append(np.ones(1, dtype=np.int64))
    return np.concatenate(starts).astype(np.int64), np.concatenate(sizes).astype(np.int64)


def substitution_slots(tokenizer: KmerTokenizer, body: np.ndarray, codes: np.ndarray, name: str):
    """Every (token, base in it) of a region: token index (M,), base position (M,), and the ids
    of the token with that base changed to A T C G (M, 4); an N's alternatives are itself
    (changing an N would re-cut the sequence: no first-order effect)."""
    starts, sizes = token_layout(tokenizer, codes)
    if starts.size != body.size:
        raise GenofmInputError(f"region {name}: {body.size} tokens, but its bases make {starts.size}")
    token = np.repeat(np.arange(body.size), sizes)  # (M,)
    within = np.arange(token.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # base's offset in its token
    position = starts[token] + within
    ids = body[token].astype(np.int64)
    base = codes[position].astype(np.int64)
    is_kmer = (sizes[token] > 1) & (ids >= tokenizer.kmer_offset) & (ids < tokenizer.single_offset)
    place = 4 ** np.where(is_kmer, sizes[token] - 1 - within, 0)  # the base's digit in the k-mer id
    alternatives = np.arange(4)[None, :]
    alt = np.where(is_kmer[:, None], ids[:, None] + (alternatives - base[:, None]) * place[:, None],
                   tokenizer.single_offset + alternatives)
    alt = np.where((base == 4)[:, None], ids[:, None], alt)
    return token, position, alt


def uniform_baseline(model: DNALM, tokenizer: KmerTokenizer, ids: torch.Tensor) -> torch.Tensor:
    """(B, T, D) baseline embeddings: each k-mer token -> the mean k-mer embedding, each single
    base -> the mean of A C G T; <cls>, N, padding keep theirs."""
    E = model.embed.weight.detach()
    out = E[ids].clone()
    singles = torch.arange(tokenizer.single_offset, tokenizer.single_offset + 4)
    is_single = (ids >= tokenizer.single_offset) & (ids < tokenizer.single_offset + 4)
    out[is_single] = E[singles].mean(0)
    if tokenizer.k > 1:
        is_kmer = (ids >= tokenizer.kmer_offset) & (ids < tokenizer.single_offset)
        out[is_kmer] = E[tokenizer.kmer_offset:tokenizer.single_offset].mean(0)
    return out


# --- the attribution ------------------------------------------------------------------------

class Attributor:
    """Batched gradients of a target with respect to token embeddings, and per-base maps."""

    def __init__(self, model: DNALM, tokenizer: KmerTokenizer, target, settings: AttributionSettings | None = None,
                 device="cpu"):
        if not isinstance(model, DNALM) or not isinstance(tokenizer, KmerTokenizer):
            raise GenofmInputError("attributions need a genofm model with its k-mer tokenizer (not an imported "
                                   "Hugging Face checkpoint)")
        if model.cfg.aligned_species:
            raise GenofmInputError("attributions of alignment-aware models are not supported")
        self.model, self.tokenizer, self.target = model.eval(), tokenizer, target
        self.settings = settings or AttributionSettings()
        self.device = torch.device(device)
        for p in self.model.parameters():  # gradients only to the inputs
            p.requires_grad_(False)

    def batch_ids(self, bodies: list[np.ndarray]) -> torch.Tensor:
        """(B, T) <cls> + body, padded."""
        width = max(b.size for b in bodies) + 1
        if width > self.model.cfg.max_len:
            raise GenofmInputError(f"a region of {width - 1} tokens is longer than the model's context "
                                   f"({self.model.cfg.max_len - 1} after <cls>); attribute shorter regions")
        ids = torch.full((len(bodies), width), PAD, dtype=torch.long)
        ids[:, 0] = CLS
        for i, body in enumerate(bodies):
            ids[i, 1:1 + body.size] = torch.from_numpy(body.astype(np.int64))
        return ids.to(self.device)

    def gradients(self, ids: torch.Tensor, lengths: list[int]):
        """(gradient (B, T, D), f(x) (B,), f(baseline) (B,) or None, x - baseline (B, T, D) or None).
        Input x gradient: the gradient at x; integrated gradients: averaged along the path."""
        x = self.model.embed(ids).detach()  # (B, T, D)

        def grad_at(embeddings):
            embeddings = embeddings.detach().requires_grad_(True)
            value = self.target(self.model, ids, embeddings, lengths)  # (B,)
            (grad,) = torch.autograd.grad(value.sum(), embeddings)
            return grad, value.detach()

        if self.settings.method == "input_x_gradient":
            grad, value = grad_at(x)
            return grad, value, None, None
        baseline = uniform_baseline(self.model, self.tokenizer, ids)
        nodes, weights = np.polynomial.legendre.leggauss(self.settings.steps)  # on [-1, 1]
        grad = torch.zeros_like(x)
        for node, weight in zip((nodes + 1) / 2, weights / 2):
            g, _ = grad_at(baseline + float(node) * (x - baseline))
            grad += float(weight) * g
        with torch.no_grad():
            value = self.target(self.model, ids, x, lengths).detach()
            base_value = self.target(self.model, ids, baseline, lengths).detach()
        return grad, value, base_value, x - baseline

    @torch.no_grad()
    def target_of(self, sequences: list[str], names: list[str]) -> np.ndarray:
        """The target of each sequence, (n,), run in batches of batch_regions x 16."""
        out, batch = [], self.settings.batch_regions * 16
        for lo in range(0, len(sequences), batch):
            ids_flat, offsets = self.tokenizer.encode_batch(sequences[lo:lo + batch], names[lo:lo + batch],
                                                            add_special_tokens=False, dtype=np.int64)
            bodies = [ids_flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
            ids = self.batch_ids(bodies)
            out.append(self.target(self.model, ids, self.model.embed(ids), [b.size for b in bodies]).float().cpu())
        return torch.cat(out).numpy()

    def saturation_maps(self, sequences: list[str], names: list[str]):
        """ISM of one strand: (L_i, 4) exact effects in code order A T C G (0 for the base present
        and at N), and f(x) per region."""
        maps, values = [], []
        for sequence, name in zip(sequences, names):
            codes = base_codes(sequence, name)
            where = np.flatnonzero(codes < 4)
            mutants = [sequence] + [sequence[:p] + base + sequence[p + 1:] for p in where for base in "ATCG"
                                    if _BYTE_TO_CODE[ord(base)] != codes[p]]
            effects = self.target_of(mutants, [name] * len(mutants))
            per_base = np.zeros((codes.size, 4))
            others = np.ones((where.size, 4), dtype=bool)
            others[np.arange(where.size), codes[where]] = False  # the base present: no change
            rows = per_base[where]
            rows[others] = effects[1:] - effects[0]
            per_base[where] = rows
            maps.append(per_base)
            values.append(effects[0])
        return maps, np.array(values), None, None

    def strand_maps(self, sequences: list[str], names: list[str]):
        """Per-base substitution effects of one strand: list of (L_i, 4) in code order A T C G,
        and f(x), f(baseline), token-attribution sums per region."""
        if self.settings.method == "ism":
            return self.saturation_maps(sequences, names)
        codes = [base_codes(s, n) for s, n in zip(sequences, names)]
        ids_flat, offsets = self.tokenizer.encode_batch(sequences, names, add_special_tokens=False, dtype=np.int64)
        bodies = [ids_flat[offsets[i]:offsets[i + 1]] for i in range(len(sequences))]
        ids = self.batch_ids(bodies)
        grad, value, base_value, delta = self.gradients(ids, [b.size for b in bodies])
        E = self.model.embed.weight.detach()
        maps = []
        for i, (body, c) in enumerate(zip(bodies, codes)):
            token, position, alt = substitution_slots(self.tokenizer, body, c, names[i])
            g = grad[i, 1 + torch.from_numpy(token).to(self.device)]  # (M, D), <cls> at 0
            alt = torch.from_numpy(alt).to(self.device)
            own = torch.from_numpy(body[token].astype(np.int64)).to(self.device)
            effect = torch.einsum("md,mbd->mb", g, E[alt]) - (g * E[own]).sum(-1, keepdim=True)  # (M, 4)
            per_base = torch.zeros(c.size, 4, dtype=effect.dtype, device=self.device)
            per_base.index_add_(0, torch.from_numpy(position).to(self.device), effect)
            maps.append(per_base.cpu().numpy())
        token_sum = None if delta is None else (grad * delta).sum((1, 2)).cpu().numpy()
        return maps, value.cpu().numpy(), None if base_value is None else base_value.cpu().numpy(), token_sum

    def attribute(self, sequences: list[str], names: list[str] | None = None) -> dict:
        """Attributions of regions, one batch: one_hot and hypothetical (n, L, 4) in A C G T order
        (zero-padded to the longest; hypothetical mean-centred per position), lengths (n,), and
        per region target, baseline_target (IG) and token_sum (IG: sum of token attributions,
        which approximates target - baseline_target)."""
        names = names or [str(i) for i in range(len(sequences))]
        maps, value, base_value, token_sum = self.strand_maps(sequences, names)
        rc_average = getattr(self.target, "rc_average", False)
        if rc_average:  # the target is (f(x) + f(rc x)) / 2: half of each strand's map, mapped back
            rc_maps, rc_value, rc_base, rc_sum = self.strand_maps([reverse_complement(s) for s in sequences], names)
            maps = [(m + r[::-1][:, CODE_COMPLEMENT[:4]]) / 2 for m, r in zip(maps, rc_maps)]
            value = (value + rc_value) / 2
            base_value = None if base_value is None else (base_value + rc_base) / 2
            token_sum = None if token_sum is None else (token_sum + rc_sum) / 2
        lengths = np.array([len(s) for s in sequences])
        width = int(lengths.max())
        one_hot = np.zeros((len(sequences), width, 4), dtype=np.float32)
        hypothetical = np.zeros((len(sequences), width, 4), dtype=np.float32)
        for i, (s, m) in enumerate(zip(sequences, maps)):
            c = base_codes(s, names[i])
            known = c < 4
            one_hot[i, np.flatnonzero(known), CODE_TO_CHANNEL[c[known]]] = 1.0
            acgt = m[:, [0, 2, 3, 1]]  # code order A T C G -> A C G T
            hypothetical[i, :len(s)] = np.where(known[:, None], acgt - acgt.mean(1, keepdims=True), 0.0)
        nan = np.full(len(sequences), np.nan)
        return {"one_hot": one_hot, "hypothetical": hypothetical, "lengths": lengths, "target": value,
                "baseline_target": nan if base_value is None else base_value,
                "token_sum": nan if token_sum is None else token_sum}


def region_labels(regions_parquet: str | Path, labels_table: str | None = None,
                  labels_column: str = "label") -> np.ndarray:
    """Each region's label: from the task's labels table (keyed by region name) where it has
    one, else the region set's own."""
    import pyarrow.parquet as pq

    from .regions import labels_from_table

    if labels_table:
        names = pq.read_table(regions_parquet, columns=["name"]).column("name").to_pandas()
        return labels_from_table(names, labels_table, labels_column, str(regions_parquet)).to_numpy()
    return pq.read_table(regions_parquet, columns=["label"]).column("label").to_numpy(zero_copy_only=False)


def selected_rows(regions_parquet: str | Path, max_regions: int | None = None, label: str | None = None,
                  labels_table: str | None = None, labels_column: str = "label") -> np.ndarray:
    """Row numbers of the regions to attribute: those with `label` (all if None; the labels as
    region_labels reads them), the first max_regions of them (all if None)."""
    import pyarrow.parquet as pq

    if label is None:
        rows = np.arange(pq.ParquetFile(regions_parquet).metadata.num_rows)
    else:
        labels = region_labels(regions_parquet, labels_table, labels_column)
        rows = np.flatnonzero(labels == label)
        if rows.size == 0:
            where = f"{labels_table} (column {labels_column})" if labels_table else str(regions_parquet)
            present = sorted({str(v) for v in labels if v is not None and v == v})[:10]
            raise GenofmInputError(f"{where}: no region of {regions_parquet} has label {label!r} (labels: "
                                   f"{', '.join(present) or 'none'})")
    return rows if max_regions is None else rows[:max_regions]


def region_width(regions_parquet: str | Path, max_regions: int | None = None, label: str | None = None,
                 labels_table: str | None = None, labels_column: str = "label") -> int:
    """The longest region among those attributed (selected_rows): the attributions' width."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lengths = pc.binary_length(pq.read_table(regions_parquet, columns=["sequence"]).column("sequence"))
    lengths = lengths.take(selected_rows(regions_parquet, max_regions, label, labels_table, labels_column))
    if len(lengths) == 0:
        raise GenofmInputError(f"{regions_parquet}: the region set is empty")
    return int(pc.max(lengths).as_py())


def attribute_regions(model_dir: str | Path, regions_parquet: str | Path, out_one_hot: str | Path,
                      out_hypothetical: str | Path, out_index: str | Path, head_dir: str | Path | None = None,
                      settings: AttributionSettings | None = None, device: str = "cpu",
                      max_regions: int | None = None, finetune_dir: str | Path | None = None,
                      label: str | None = None, labels_table: str | None = None,
                      labels_column: str = "label") -> int:
    """Attribute every region of a region set (those with `label` if given, read as
    region_labels does, the first
    max_regions of them if given) to a probe head
    (head_dir), a saved fine-tune of the model (finetune_dir) or, with neither, to the LM's
    likelihood. Writes one_hot and hypothetical (n, L, 4) float32 .npy (L the longest region;
    zero-padded), chunk by chunk into memmaps, and an index
    parquet (chrom, start, end, strand, name, length, target, baseline_target, token_sum)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .atomic import atomic_paths
    from .heads import ProbeHead
    from .loading import load_model_and_tokenizer

    settings = settings or AttributionSettings()
    if finetune_dir is not None:
        from .finetuned import FinetunedHead

        finetuned = FinetunedHead.load(finetune_dir, model_dir, device, where=f"attributions of {regions_parquet}")
        model, tokenizer = finetuned.backbone, finetuned.tokenizer
        target = FinetuneTarget(finetuned, settings.class_name)
    else:
        model, tokenizer = load_model_and_tokenizer(model_dir, device)
        if head_dir is not None:
            head = ProbeHead.load(head_dir)
            head.check_compatible(model_dir, head.meta.get("embedding", {}), f"attributions of {regions_parquet}")
            target = HeadTarget(head, settings.class_name)
        else:
            target = LikelihoodTarget(settings.mask_groups)
    attributor = Attributor(model, tokenizer, target, settings, device)
    parquet = pq.ParquetFile(regions_parquet)
    rows_wanted = selected_rows(regions_parquet, max_regions, label, labels_table, labels_column)
    n = rows_wanted.size
    width = region_width(regions_parquet, max_regions, label, labels_table, labels_column)
    columns = ["chrom", "start", "end", "strand", "name", "sequence"]
    started, done, rows = time.perf_counter(), 0, []
    logged = started
    with atomic_paths(out_one_hot, out_hypothetical, out_index) as (tmp_one_hot, tmp_hyp, tmp_index):
        one_hot = np.lib.format.open_memmap(tmp_one_hot, mode="w+", dtype=np.float32, shape=(n, width, 4))
        hypothetical = np.lib.format.open_memmap(tmp_hyp, mode="w+", dtype=np.float32, shape=(n, width, 4))
        first_row = 0
        for chunk in parquet.iter_batches(batch_size=settings.chunk_regions, columns=columns):
            keep = rows_wanted[(rows_wanted >= first_row) & (rows_wanted < first_row + chunk.num_rows)] - first_row
            first_row += chunk.num_rows
            chunk = chunk.take(keep)
            table = chunk.to_pydict()
            for lo in range(0, chunk.num_rows, settings.batch_regions):
                if done >= n:
                    break
                hi = min(lo + settings.batch_regions, chunk.num_rows, lo + n - done)
                names = [f"{name} in {regions_parquet}" for name in table["name"][lo:hi]]
                out = attributor.attribute(table["sequence"][lo:hi], names)
                L = out["one_hot"].shape[1]
                one_hot[done:done + hi - lo, :L] = out["one_hot"]
                hypothetical[done:done + hi - lo, :L] = out["hypothetical"]
                for j in range(hi - lo):
                    rows.append({key: table[key][lo + j] for key in columns[:5]}
                                | {"length": int(out["lengths"][j]), "target": float(out["target"][j]),
                                   "baseline_target": float(out["baseline_target"][j]),
                                   "token_sum": float(out["token_sum"][j])})
                done += hi - lo
                if time.perf_counter() - logged > 30 or done == n:  # progress lines, at most twice a minute
                    logged = time.perf_counter()
                    rate = done / (logged - started)
                    log.info("attributed %d/%d regions (%.1f regions/s, ETA %.0f s)", done, n, rate,
                             (n - done) / rate)
            if done >= n:
                break
        one_hot.flush()
        hypothetical.flush()
        del one_hot, hypothetical
        table = pa.Table.from_pylist(rows)
        pq.write_table(table.replace_schema_metadata({"target": target.label, "method": settings.method}), tmp_index)
    return n
