"""Hugging Face masked and causal DNA LMs (e.g. a BERT or Caduceus masked LM over characters,
DNABERT-2's BERT over BPE tokens, a Llama, Mamba or HyenaDNA causal LM over characters,
GENERator-style causal LMs over 6-mers), behind the interface of `genofm.model.DNALM`.

genofm's stages speak ids with its special tokens first and a <cls> slot first in every
sequence: `KmerTokenizer` ids where the checkpoint's tokens are single bases or k-mers (checked
at load time against the checkpoint's own tokenizer on a probe sequence), otherwise the
checkpoint's own subword tokenizer in that layout (`genofm.subword.SubwordTokenizer`).
`MappedLM` feeds the checkpoint its own ids for the same tokens (mapped by token string), its
own <cls>/<s> token in the slot when it has one, and maps the outputs back:

- logits become the checkpoint's log-probabilities of genofm's tokens; the probability mass of
  the checkpoint's other tokens goes to one genofm slot, so log_softmax over genofm's
  vocabulary gives exactly the checkpoint's own log P (log-likelihood differences of causal
  LMs then equal a direct computation); that slot is <cls>'s, which is never predicted;
- without a <cls>/<s> token the slot is dropped: its hidden state is the mean of the
  sequence's (mean pooling then equals the checkpoint's mean), and a causal model predicts the
  first base uniformly (it cancels in REF/ALT differences unless the variant is the first base).

Remote code (`auto_map` in config.json: Caduceus, HyenaDNA, DNABERT-2's modeling files) runs
only when the model's config says `trust_remote_code: true`: that code is Python from the
checkpoint's directory, run with the workflow's rights.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import GenofmInputError
from .hf import HFModelConfig
from .model import ModelOutput
from .subword import SubwordTokenizer
from .tokenizer import BOS, CLS, EOS, MASK, PAD, SPECIAL_TOKENS, UNK, KmerTokenizer

log = logging.getLogger(__name__)

MISSING_LOGIT = -1e4  # a genofm token the checkpoint has no id for: never predicted
DEFAULT_CONTEXT = 1024  # tokens, for checkpoints whose config states no maximum length
PROBE = "".join(np.random.default_rng(0).choice(list("ACGT"), 101))  # the tokenizer check's sequence


@dataclass
class TokenMap:
    """How genofm ids become the checkpoint's and back."""

    to_hf: torch.Tensor  # (V,) the checkpoint id fed for each genofm id (0 where none is used)
    reads_logit: torch.Tensor  # (V,) bool: genofm ids that read the checkpoint's log P (one per checkpoint id)
    rest_slot: int  # a genofm id never predicted (<cls>): holds the mass of the checkpoint's other tokens
    cls_id: int | None  # the checkpoint's <cls> or <s>, fed in genofm's <cls> slot; None: the slot is dropped


def vocab_k(vocab: dict[str, int], source: str) -> int:
    """k of a checkpoint's nucleotide tokens: the longest token made of A/C/G/T only, all 4^k
    present (1: single bases)."""
    lengths = {len(t) for t in vocab if t and set(t.upper()) <= set("ACGT")}
    k = max(lengths, default=0)
    upper = {t.upper() for t in vocab}
    if not 1 <= k <= 8 or not all(b in upper for b in "ACGT"):
        raise GenofmInputError(f"{source}: the vocabulary has no single-base or k-mer tokens for A, C, G and T; "
                               "genofm reads checkpoints whose tokens are bases or k-mers")
    return k


def special_id(hf_tokenizer, *names: str) -> int | None:
    for name in names:
        value = getattr(hf_tokenizer, f"{name}_token_id", None)
        if value is not None:
            return int(value)
    return None


def token_map(hf_tokenizer, tokenizer: KmerTokenizer, source: str, masked: bool) -> TokenMap:
    vocab = hf_tokenizer.get_vocab()
    lookup = {**{t.upper(): i for t, i in vocab.items()}, **vocab}  # exact case first, then either case
    unk = special_id(hf_tokenizer, "unk")
    to_hf = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    reads = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
    taken: set[int] = set()
    specials = {MASK: special_id(hf_tokenizer, "mask"), PAD: special_id(hf_tokenizer, "pad", "eos", "unk"),
                UNK: unk, EOS: special_id(hf_tokenizer, "eos", "sep"), BOS: special_id(hf_tokenizer, "bos")}
    if masked and specials[MASK] is None:
        raise GenofmInputError(f"{source}: a masked LM whose tokenizer has no mask token")
    for ours, token in enumerate(tokenizer.vocab):
        theirs = specials.get(ours) if token in SPECIAL_TOKENS else lookup.get(token, lookup.get(token.lower()))
        if theirs is None and token == "N":
            theirs = unk  # as the checkpoint's own tokenizer reads an N it has no token for
        if theirs is None:
            continue
        to_hf[ours] = theirs
        if theirs not in taken and theirs != unk or ours == UNK:
            reads[ours] = True
            taken.add(theirs)
    # <cls> is never a prediction target: its logit holds the mass of the checkpoint's other tokens
    return TokenMap(to_hf, reads, CLS, special_id(hf_tokenizer, "cls", "bos"))


def genofm_tokenizer(hf_tokenizer, source: str, masked: bool) -> tuple[KmerTokenizer | SubwordTokenizer, TokenMap]:
    """genofm's k-mer tokenizer where it splits as the checkpoint's does (single bases, k-mers),
    else the checkpoint's own subword tokenizer (BPE, WordPiece) in genofm's id layout."""
    try:
        tokenizer = KmerTokenizer(k=vocab_k(hf_tokenizer.get_vocab(), source))
        mapping = token_map(hf_tokenizer, tokenizer, source, masked)
        check_same_tokens(hf_tokenizer, tokenizer, mapping, source)
        return tokenizer, mapping
    except GenofmInputError as err:
        if not getattr(hf_tokenizer, "is_fast", False):  # no tokenizer.json: nothing genofm can run
            raise
        log.info("%s: not a base or k-mer tokenizer (%s); using the checkpoint's own subword tokenizer", source, err)
    tokenizer = SubwordTokenizer(hf_tokenizer, source)
    mapping = token_map(hf_tokenizer, tokenizer, source, masked)
    check_same_tokens(hf_tokenizer, tokenizer, mapping, source)
    return tokenizer, mapping


def check_same_tokens(hf_tokenizer, tokenizer: KmerTokenizer | SubwordTokenizer, mapping: TokenMap, source: str) -> None:
    ours = mapping.to_hf[torch.as_tensor(tokenizer.encode(PROBE, add_special_tokens=False))].tolist()
    theirs = hf_tokenizer(PROBE, add_special_tokens=False)["input_ids"]
    if ours != theirs:
        what = (f"{tokenizer.kind} tokens" if isinstance(tokenizer, SubwordTokenizer)
                else "single bases" if tokenizer.k == 1 else f"{tokenizer.k}-mers")
        raise GenofmInputError(f"{source}: the checkpoint's tokenizer splits sequences differently from genofm's "
                               f"{what}: ids {theirs[:8]} against {ours[:8]}")


class MappedLM(nn.Module):
    """A Hugging Face masked or causal LM behind DNALM's interface (see the module docstring)."""

    def __init__(self, hf_model, mapping: TokenMap, tokenizer: KmerTokenizer | SubwordTokenizer, causal: bool,
                 source: str):
        super().__init__()
        self.hf = hf_model
        self.mapping = mapping
        self.register_buffer("to_hf", mapping.to_hf, persistent=False)
        self.register_buffer("reads_logit", mapping.reads_logit, persistent=False)
        c = hf_model.config
        positions = next((getattr(c, n) for n in ("max_position_embeddings", "n_positions", "max_seq_len")
                          if isinstance(getattr(c, n, None), int)), DEFAULT_CONTEXT)
        self.drops_cls = mapping.cls_id is None
        self.cfg = HFModelConfig(vocab_size=tokenizer.vocab_size, max_len=positions + int(self.drops_cls),
                                n_layers=getattr(c, "num_hidden_layers", None) or getattr(c, "n_layer", 1),
                                d_model=getattr(c, "hidden_size", None) or getattr(c, "d_model", 0),
                                n_heads=getattr(c, "num_attention_heads", 1), pad_id=PAD, causal=causal,
                                extra={"tokenizer": tokenizer_description(tokenizer), "source": source,
                                       "architecture": (c.architectures or [c.model_type])[0]})
        parameters = inspect.signature(hf_model.forward).parameters
        self.takes_mask = "attention_mask" in parameters
        # a key/value cache to continue from (variant scoring): not every remote-code model has one
        self.takes_cache = "use_cache" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
        # a plain forward keeps no key/value cache: it would hold every layer's keys and values until
        # the outputs are freed (embedding, scoring's full passes)
        self.no_cache = {"use_cache": False} if causal and "use_cache" in parameters else {}
        self.cache_keyword = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5
        # peft targets (fine-tuning): every linear layer of the backbone, whatever the family names them
        head = hf_model.get_output_embeddings()
        self.lora_targets = sorted(f"hf.{name}" for name, m in hf_model.named_modules()
                                   if isinstance(m, nn.Linear) and m is not head)
        self.ia3_targets, self.ia3_feedforward = self.lora_targets, []

    def num_parameters(self, embeddings: bool = True) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, ids, attention_mask=None, output_hidden_states=False, output_attentions=False,
                logits_at=None, return_logits=True) -> ModelOutput:
        if ids.shape[1] > self.cfg.max_len:
            raise GenofmInputError(f"sequence of {ids.shape[1]} tokens is longer than the model's {self.cfg.max_len}")
        implementation = getattr(self.hf.config, "_attn_implementation", None)
        if output_attentions and implementation not in (None, "eager"):  # only eager attention returns maps
            self.hf.set_attn_implementation("eager")
            try:
                return self.forward(ids, attention_mask, output_hidden_states, True, logits_at, return_logits)
            finally:
                self.hf.set_attn_implementation(implementation)
        mask = (ids != PAD) if attention_mask is None else attention_mask.bool()  # (B, L)
        hf_ids = self.hf_ids(ids)
        if self.drops_cls:
            mask = mask[:, 1:]  # (B, L-1)
        # genofm pads on the right, where a causal model's real tokens never look: no mask, so that
        # attention takes its fast causal path (the same numbers)
        extra = ({"attention_mask": mask.long()} if self.takes_mask and not self.cfg.causal else {}) | self.no_cache
        out = self.hf(input_ids=hf_ids, output_hidden_states=True, output_attentions=output_attentions,
                      return_dict=True, **extra)
        hidden = out.hidden_states
        if not hidden and (output_hidden_states or not return_logits):  # scores need no hidden states
            hidden = self.last_layer_only(hf_ids, extra, output_hidden_states)
        states = [self.with_cls_slot(h, mask) for h in hidden or [None]]  # n_layers + 1 (or the last) of (B, L, D)
        logits = None
        if return_logits:
            ours = self.genofm_logits(out.logits)  # (B, L, V)
            logits = ours if logits_at is None else ours[logits_at]
        attentions = None
        if output_attentions:
            attentions = [None if a is None else (F.pad(a, (1, 0, 1, 0)) if self.drops_cls else a)
                          for a in (out.attentions or [None] * self.cfg.n_layers)]
        return ModelOutput(logits=logits, last_hidden=states[-1], attentions=attentions,
                           hidden_states=states if output_hidden_states else None)

    def hf_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """The checkpoint's ids for genofm's (B, L): its <cls>/<s> in the slot, or the slot dropped."""
        hf_ids = self.to_hf[ids]
        if self.drops_cls:
            return hf_ids[:, 1:]  # (B, L-1)
        hf_ids[:, 0] = self.mapping.cls_id
        return hf_ids

    def genofm_logits(self, hf_logits: torch.Tensor, slot: bool = True) -> torch.Tensor:
        """(B, L, V): the checkpoint's log P of genofm's tokens, the rest of its mass in one slot;
        a dropped <cls> slot gets back (slot=True) as a uniform prediction of the first base."""
        logp = hf_logits.float().log_softmax(-1)  # (B, L', V_hf)
        ours = logp[..., self.to_hf].masked_fill(~self.reads_logit, MISSING_LOGIT)  # (B, L', V)
        kept = torch.logsumexp(ours, -1).clamp(max=-1e-6)  # the mass of the checkpoint's other tokens
        ours[..., self.mapping.rest_slot] = torch.log(-torch.expm1(kept)).clamp(min=MISSING_LOGIT)
        if self.drops_cls and slot:
            first = torch.zeros_like(ours[:, :1]).masked_fill(~self.reads_logit, MISSING_LOGIT)
            ours = torch.cat([first, ours], dim=1)
        return ours

    # --- causal LMs: on from a shared prefix with the key/value cache (variant scoring) ------

    def forward_with_state(self, ids) -> tuple[torch.Tensor, list | None]:
        """Logits (B, L, V) and each layer's keys and values to continue from; None where the
        checkpoint keeps no cache that can be cut (Mamba's recurrent state, remote code)."""
        if not self.takes_cache or not self.cfg.causal:
            return self.forward(ids).logits, None
        if ids.shape[1] > self.cfg.max_len:
            raise GenofmInputError(f"sequence of {ids.shape[1]} tokens is longer than the model's {self.cfg.max_len}")
        out = self.hf(input_ids=self.hf_ids(ids), use_cache=True, return_dict=True)
        logits = self.genofm_logits(out.logits)
        layers = getattr(getattr(out, "cache", None) or getattr(out, "past_key_values", None), "layers", None)
        if not layers or not all(type(layer).__name__ == "DynamicLayer" for layer in layers):
            return logits, None
        return logits, [(layer.keys, layer.values) for layer in layers]

    def prefix_state(self, state: list, rows: torch.Tensor, start: int) -> list:
        """The keys and values of sequences `rows` up to genofm position start."""
        cut = start - int(self.drops_cls)
        return [(keys[rows, :, :cut], values[rows, :, :cut]) for keys, values in state]

    @torch.no_grad()
    def forward_from(self, ids, start: int, state: list) -> torch.Tensor:
        """Logits (B, L - start, V) at genofm positions start.. of ids, the checkpoint run from there
        on the cache of a shared prefix (prefix_state); equal to forward(ids).logits[:, start:]."""
        from transformers import DynamicCache

        cut = start - int(self.drops_cls)
        if cut < 1:  # nothing to continue from
            return self.forward(ids).logits[:, start:]
        out = self.hf(input_ids=self.hf_ids(ids)[:, cut:], use_cache=True, return_dict=True,
                      **{self.cache_keyword: DynamicCache(state)})
        return self.genofm_logits(out.logits, slot=False)

    def last_layer_only(self, hf_ids, extra: dict, all_layers: bool) -> list[torch.Tensor]:
        """[last hidden state] from the backbone, for remote code whose LM returns no hidden states
        (DNABERT-2's BertForMaskedLM): its backbone's first output is the last layer."""
        if all_layers:
            raise GenofmInputError(f"{self.cfg.extra['source']}: this checkpoint's code returns no hidden states "
                                   "but the last layer's; set embeddings.layer (and variant_scoring.embedding_layer) "
                                   "to -1")
        first = self.hf.base_model(input_ids=hf_ids, **extra)[0]
        return [first[-1] if isinstance(first, (list, tuple)) else first]

    def with_cls_slot(self, hidden: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor | None:
        """(B, L, D): as is, or with the dropped <cls> slot holding the mean of the real tokens."""
        if hidden is None or not self.drops_cls:
            return hidden
        weights = mask[..., None].to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, D)
        return torch.cat([mean[:, None], hidden], dim=1)


def tokenizer_description(tokenizer: KmerTokenizer | SubwordTokenizer) -> dict:
    if isinstance(tokenizer, SubwordTokenizer):
        return tokenizer.description
    return {"k": tokenizer.k, "overlapping": False}


def needs_remote_code(directory: Path) -> bool:
    config = json.loads((directory / "config.json").read_text())
    return bool(config.get("auto_map"))


def load_mapped_lm(directory: Path, architecture: str, trust_remote_code: bool = False,
                   device="cpu") -> tuple[MappedLM, KmerTokenizer]:
    """A local masked (…ForMaskedLM) or causal (…ForCausalLM) LM checkpoint."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    if needs_remote_code(directory) and not trust_remote_code:
        raise GenofmInputError(f"{directory}: this checkpoint runs its own Python code (auto_map in config.json); "
                               "genofm runs it only when the model's config says trust_remote_code: true "
                               "(read that code first: it runs with the workflow's rights)")
    causal = architecture.endswith("ForCausalLM")
    if not causal and not architecture.endswith("ForMaskedLM"):
        raise GenofmInputError(f"{directory}: architecture {architecture!r}; genofm reads masked LMs "
                               "(...ForMaskedLM) and causal LMs (...ForCausalLM)")
    options = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(directory, **options)
    except (OSError, ValueError) as err:
        raise GenofmInputError(f"{directory}: cannot read the checkpoint's tokenizer: {err}") from err
    tokenizer, mapping = genofm_tokenizer(hf_tokenizer, str(directory), masked=not causal)
    auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    model = auto.from_pretrained(directory, use_safetensors=True, **options)
    return MappedLM(model.to(device).eval(), mapping, tokenizer, causal, str(directory)).to(device), tokenizer
