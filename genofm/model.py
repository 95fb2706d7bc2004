"""The genofm DNA language model: one transformer over k-mer tokens, nanoGPT style.

Encoder (bidirectional, masked LM) and decoder (causal, next token) share the same blocks:
pre-LayerNorm, attention through `F.scaled_dot_product_attention`, GELU or SwiGLU
feed-forward, and RoPE (default, as Nucleotide Transformer v2), ALiBi or learned positions.
`mixer` swaps attention for dilated depthwise convolutions in every block (conv, GPN-like) or
in all but the last n_attention_layers (hybrid). `ModelConfig` travels with the weights: `save_pretrained` writes model.safetensors next to
config.json, `DNALM.from_pretrained(directory)` reads them back without unpickling anything.

Alignment-aware (GPN-MSA's design, `aligned_species`): single-nucleotide tokens, and at each
position the bases S other species align to it (genofm.alignment codes: absent, A, C, G, T, N,
gap) enter as a learned embedding per (species, code), summed with the token's embedding. The
masked LM then predicts a masked reference base from its context and what the other species
have there.

Shapes: B batch, L sequence length (tokens), D d_model, H heads, Dh = D / H head size,
V vocabulary size, S aligned species.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .alignment import GAP
from .config import ArchitectureConfig
from .errors import GenofmInputError, dataclass_from_dict

CONFIG_NAME = "config.json"
ALIGNMENT_CODES = GAP + 1  # genofm.alignment's codes: absent, A, C, G, T, N, gap
WEIGHTS_NAME = "model.safetensors"


@dataclass
class ModelConfig(ArchitectureConfig):
    """The architecture settings (genofm.config.ArchitectureConfig) and what the workflow fills in."""

    vocab_size: int = 4107
    causal: bool = False  # False: encoder for masked LM; True: decoder for next-token LM
    pad_id: int = 1
    aligned_species: list[str] = field(default_factory=list)  # the alignment columns read, in this order
    extra: dict = field(default_factory=dict)  # free-form provenance (tokenizer spec, ...)

    def __post_init__(self):
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.position not in ("rope", "alibi", "learned"):
            problems.append(f"position must be rope, alibi or learned, not {self.position!r}")
        if self.position == "rope" and (self.d_model // self.n_heads) % 2:
            problems.append("RoPE needs an even head size (d_model / n_heads)")
        if self.ffn not in ("gelu", "swiglu"):
            problems.append(f"ffn must be gelu or swiglu, not {self.ffn!r}")
        if self.mixer not in ("attention", "conv", "hybrid"):
            problems.append(f"mixer must be attention, conv or hybrid, not {self.mixer!r}")
        if self.mixer == "hybrid" and not 1 <= self.n_attention_layers <= self.n_layers:
            problems.append(f"n_attention_layers ({self.n_attention_layers}) must be between 1 and n_layers")
        if self.conv_dilation_base < 2:
            problems.append(f"conv_dilation_base ({self.conv_dilation_base}) must be at least 2")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            problems.append(f"conv_kernel ({self.conv_kernel}) must be odd and positive")
        if self.lm_head not in ("esm", "linear"):
            problems.append(f"lm_head must be esm or linear, not {self.lm_head!r}")
        if self.aligned_species and self.causal:
            problems.append("an alignment-aware model is a masked LM (objective mlm)")
        if min(self.vocab_size, self.max_len, self.n_layers, self.d_model, self.n_heads, self.d_ff) < 1:
            problems.append("sizes must be positive")
        if problems:
            raise GenofmInputError("invalid model config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        data = {"lm_head": "linear", **data}  # config.json files from before lm_head had the linear head
        return dataclass_from_dict(cls, data, "model config")

    def block_mixers(self) -> list[tuple[str, int]]:
        """(attention | conv, dilation) of each block, first to last."""
        n_conv = {"attention": 0, "conv": self.n_layers, "hybrid": self.n_layers - self.n_attention_layers}[self.mixer]
        dilations = [1]  # 1, base, base^2 ... up to conv_max_dilation
        while dilations[-1] * self.conv_dilation_base <= self.conv_max_dilation:
            dilations.append(dilations[-1] * self.conv_dilation_base)
        return [("conv", dilations[i % len(dilations)]) if i < n_conv else ("attention", 1)
                for i in range(self.n_layers)]


# --- positions ----------------------------------------------------------------------------

def rope_tables(cfg: ModelConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (max_len, Dh) for rotate-half RoPE (as ESM / NT v2 apply it)."""
    head = cfg.d_model // cfg.n_heads
    inv_freq = 1.0 / cfg.rope_base ** (torch.arange(0, head, 2, dtype=torch.float32, device=device) / head)
    angles = torch.outer(torch.arange(cfg.max_len, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)  # (max_len, Dh)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, L, Dh); cos/sin: (L, Dh)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Per-head slopes of ALiBi (Press et al.): a geometric series from 2^(-8/H)."""
    closest = 2 ** math.floor(math.log2(n_heads))
    base = [2 ** (-8 * (i + 1) / closest) for i in range(closest)]
    extra = [2 ** (-4 * (2 * i + 1) / closest) for i in range(n_heads - closest)]
    return torch.tensor(base + extra)


# --- blocks -------------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x, bias, rope, need_weights=False):
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, L, Dh)
        if rope is not None:
            cos, sin = (t.to(q.dtype) for t in rope)  # bf16 under autocast: keep q, k in it
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if bias is not None:
            bias = bias.to(q.dtype)  # under autocast q is bf16; SDPA wants matching dtypes
        weights = None
        if need_weights:  # the explicit path, only for attention maps
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, L, L)
            if bias is not None:
                scores = scores + bias
            weights = scores.softmax(dim=-1)
            y = weights @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, L, D)  # (B, L, D)
        return self.out(y), weights

    def forward_from(self, prefix, x, bias, rope):
        """Causal only: the outputs at positions start.. (x: (B, Ls, D), normalised) after a prefix
        (B, start, D) whose inputs are known: keys and values over both, queries for x only.
        bias: rows start.. of the full (.., L, L) mask."""
        B, Ls, D = x.shape
        L = prefix.shape[1] + Ls
        q, k, v = self.qkv(torch.cat([prefix, x], 1)).view(B, L, 3, self.n_heads, D // self.n_heads).permute(
            2, 0, 3, 1, 4)  # 3 x (B, H, L, Dh)
        if rope is not None:
            cos, sin = (t.to(q.dtype) for t in rope)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q[:, :, L - Ls:], k, v, attn_mask=bias.to(q.dtype))  # (B, H, Ls, Dh)
        return self.out(y.transpose(1, 2).reshape(B, Ls, D))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.swiglu = cfg.ffn == "swiglu"
        self.up = nn.Linear(cfg.d_model, cfg.d_ff * (2 if self.swiglu else 1))
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        h = self.up(x)  # (B, L, d_ff) or (B, L, 2 d_ff)
        if self.swiglu:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        return self.drop(self.down(h))


class DilatedConv(nn.Module):
    """Depthwise dilated convolution along the sequence, then a pointwise projection (a
    cheap separable form of GPN's dilated convolutions). Causal models pad on the left only."""

    def __init__(self, cfg: ModelConfig, dilation: int):
        super().__init__()
        self.reach = (cfg.conv_kernel - 1) * dilation
        self.causal = cfg.causal
        self.depthwise = nn.Conv1d(cfg.d_model, cfg.d_model, cfg.conv_kernel, dilation=dilation, groups=cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x, keep):
        """x: (B, L, D); keep: (B, L, 1) 1.0 at real tokens, 0.0 at padding (which must not leak)."""
        h = (x * keep).transpose(1, 2)  # (B, D, L)
        left = self.reach if self.causal else self.reach // 2
        h = self.depthwise(F.pad(h, (left, self.reach - left)))  # (B, D, L)
        return self.out(F.gelu(h.transpose(1, 2))), None  # (B, L, D)

    def forward_from(self, tail, x, keep):
        """Causal only: the outputs at x's positions (x: (B, Ls, D)) after the last T <= reach
        positions before them (tail: (B, T, D)); keep: (B, T + Ls, 1) over both."""
        h = (torch.cat([tail, x], 1) * keep).transpose(1, 2)  # (B, D, T + Ls)
        h = self.depthwise(F.pad(h, (self.reach - tail.shape[1], 0)))  # (B, D, Ls)
        return self.out(F.gelu(h.transpose(1, 2)))  # (B, Ls, D)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, mixer: str = "attention", dilation: int = 1):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        # the token mixer keeps the name attn whatever it is: saved weights and adapters use it
        self.attn = Attention(cfg) if mixer == "attention" else DilatedConv(cfg, dilation)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, bias, rope, need_weights=False, keep=None):
        if isinstance(self.attn, DilatedConv):
            a, weights = self.attn(self.norm1(x), keep)
        else:
            a, weights = self.attn(self.norm1(x), bias, rope, need_weights)
        x = x + self.drop(a)
        x = x + self.ffn(self.norm2(x))
        return x, weights

    def forward_from(self, x, prefix, bias, rope, keep):
        """Causal only: this block at positions start.. (x: (B, Ls, D)) given its input at the
        positions before (prefix: (B, start, D)); keep: (B, start + Ls, 1)."""
        if isinstance(self.attn, DilatedConv):
            tail = prefix[:, max(0, prefix.shape[1] - self.attn.reach):]  # (B, T, D): all the conv reaches
            span = keep[:, keep.shape[1] - tail.shape[1] - x.shape[1]:]  # (B, T + Ls, 1)
            a = self.attn.forward_from(self.norm1(tail), self.norm1(x), span)
        else:
            a = self.attn.forward_from(self.norm1(prefix), self.norm1(x), bias, rope)
        x = x + a
        return x + self.ffn(self.norm2(x))


@dataclass
class ModelOutput:
    logits: torch.Tensor | None  # (B, L, V); None when not asked for
    hidden_states: list[torch.Tensor] | None = None  # n_layers + 1 of (B, L, D): embeddings, then each block
    attentions: list[torch.Tensor] | None = None  # n_layers of (B, H, L, L)
    last_hidden: torch.Tensor | None = None  # (B, L, D) after the final LayerNorm


class DNALM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model) if cfg.position == "learned" else None
        S = len(cfg.aligned_species)
        # one vector per (species, alignment code): the sum over species is a linear map of
        # their one-hot bases, as GPN-MSA's input layer
        self.aligned = nn.Embedding(S * ALIGNMENT_CODES, cfg.d_model) if S else None
        if S:
            self.register_buffer("species_offsets", torch.arange(S) * ALIGNMENT_CODES, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, mixer, dilation) for mixer, dilation in cfg.block_mixers())
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        if cfg.lm_head == "esm":
            self.head_dense = nn.Linear(cfg.d_model, cfg.d_model)
            self.head_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.lm_head == "esm")
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        if cfg.position == "alibi":
            self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("attn.out.weight", "ffn.down.weight")):  # attn.out: the conv's projection too
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))
        self._rope_cache: tuple | None = None

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n if embeddings else n - self.embed.weight.numel()

    def _rope(self, L, device):
        if self._rope_cache is None or self._rope_cache[0].device != device:
            self._rope_cache = rope_tables(self.cfg, device)
        cos, sin = self._rope_cache
        return cos[:L], sin[:L]

    def attention_bias(self, ids, attention_mask, dtype):
        """Additive mask (B or 1, H or 1, L, L) from padding, causality and ALiBi; None if free."""
        B, L = ids.shape
        parts = []
        if attention_mask is not None and not bool(attention_mask.all()):
            parts.append(torch.zeros(B, 1, 1, L, dtype=dtype, device=ids.device).masked_fill(
                ~attention_mask.bool()[:, None, None, :], float("-inf")))
        if self.cfg.causal:
            parts.append(torch.full((L, L), float("-inf"), dtype=dtype, device=ids.device).triu(1))
        if self.cfg.position == "alibi":
            pos = torch.arange(L, device=ids.device)
            distance = (pos[None, :] - pos[:, None]).abs().to(dtype)  # (L, L)
            parts.append(-self.slopes.to(dtype)[:, None, None] * distance)  # (H, L, L)
        if not parts:
            return None
        bias = parts[0]
        for p in parts[1:]:
            bias = bias + p
        return bias

    def forward(self, ids, attention_mask=None, output_hidden_states=False, output_attentions=False,
                logits_at=None, return_logits=True, aligned=None) -> ModelOutput:
        """ids: (B, L) token ids; attention_mask: (B, L), 1 for real tokens, 0 for padding
        (default: ids != pad_id). logits_at: optional (B, L) bool; logits are then computed
        only there, as (N, V) (masked LM training predicts ~15% of positions).
        return_logits=False skips the vocabulary projection (embeddings, classifiers).
        aligned: (B, L, S) alignment codes of the aligned species (alignment-aware models only;
        0, absent, at special tokens and padding)."""
        B, L = ids.shape
        if L > self.cfg.max_len:
            raise GenofmInputError(f"sequence of {L} tokens is longer than the model's max_len {self.cfg.max_len}")
        if attention_mask is None:
            attention_mask = ids != self.cfg.pad_id
        x = self.embed(ids)  # (B, L, D)
        if self.aligned is not None:
            if aligned is None or tuple(aligned.shape) != (B, L, len(self.cfg.aligned_species)):
                raise GenofmInputError(f"this model reads the aligned bases of {len(self.cfg.aligned_species)} species "
                                       f"({', '.join(self.cfg.aligned_species)}) at each position; "
                                       f"got {None if aligned is None else tuple(aligned.shape)} for ids {(B, L)}")
            x = x + self.aligned(aligned.long() + self.species_offsets).sum(2)  # (B, L, S, D) -> (B, L, D)
        elif aligned is not None:
            raise GenofmInputError("aligned bases given to a model that does not read an alignment")
        if self.pos is not None:
            x = x + self.pos(torch.arange(L, device=ids.device))
        x = self.drop(x)
        bias = self.attention_bias(ids, attention_mask, x.dtype)
        rope = self._rope(L, ids.device) if self.cfg.position == "rope" else None
        keep = attention_mask[:, :, None].to(x.dtype)  # (B, L, 1)
        hidden = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for block in self.blocks:
            x, weights = block(x, bias, rope, need_weights=output_attentions, keep=keep)
            if output_hidden_states:
                hidden.append(x)
            if output_attentions:
                attentions.append(weights)
        x = self.norm(x)
        if not return_logits:
            logits = None
        else:
            h = x if logits_at is None else x[logits_at]  # (B, L, D) or (N, D)
            if self.cfg.lm_head == "esm":
                h = self.head_norm(F.gelu(self.head_dense(h)))
            logits = self.head(h)  # (B, L, V) or (N, V)
        return ModelOutput(logits=logits, hidden_states=hidden, attentions=attentions, last_hidden=x)

    # --- running a causal model on from a shared prefix (variant scoring: REF once, ALT after
    # its first changed token) ---------------------------------------------------------------

    def forward_with_state(self, ids) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, L, V) and the state forward_from continues from: every block's input."""
        out = self(ids, output_hidden_states=True)
        return out.logits, out.hidden_states

    @staticmethod
    def prefix_state(state: list[torch.Tensor], rows: torch.Tensor, start: int) -> list[torch.Tensor]:
        """The state of sequences `rows` up to position start (each block's input; not the last output)."""
        return [h[rows, :start] for h in state[:-1]]

    @torch.no_grad()
    def forward_from(self, ids, start: int, prefix_hidden: list[torch.Tensor], return_hidden: bool = False):
        """Causal models: the logits (B, L - start, V) at positions start.. of ids (B, L), run from
        there only, given the hidden states of sequences that share ids[:, :start]: prefix_hidden,
        the n_layers + 1 states (B, >= start, D) of forward(output_hidden_states=True). Equals
        forward(ids).logits[:, start:] up to float rounding. return_hidden: also the output
        states there (B, L - start, D), forward's last_hidden[:, start:]."""
        B, L = ids.shape
        if not self.cfg.causal or self.aligned is not None or not 1 <= start < L:
            raise ValueError("forward_from: a causal model without alignment input, and 1 <= start < L")
        attention_mask = ids != self.cfg.pad_id
        x = self.embed(ids[:, start:])  # (B, Ls, D)
        if self.pos is not None:
            x = x + self.pos(torch.arange(start, L, device=ids.device))
        bias = self.attention_bias(ids, attention_mask, x.dtype)[..., start:, :]  # (.., Ls, L): causal, so never None
        rope = self._rope(L, ids.device) if self.cfg.position == "rope" else None
        keep = attention_mask[:, :, None].to(x.dtype)  # (B, L, 1)
        for block, prefix in zip(self.blocks, prefix_hidden):
            x = block.forward_from(x, prefix[:, :start], bias, rope, keep)
        last = self.norm(x)  # (B, Ls, D)
        h = self.head_norm(F.gelu(self.head_dense(last))) if self.cfg.lm_head == "esm" else last
        logits = self.head(h)  # (B, Ls, V)
        return (logits, last) if return_hidden else logits

    # --- files ----------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> None:
        """config.json + model.safetensors (tied weights stored once)."""
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.cfg), indent=2, sort_keys=True) + "\n")
        save_model(self, str(directory / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "DNALM":
        """Load a model saved by save_pretrained: safetensors only, never pickle."""
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        directory = Path(directory)
        try:
            cfg = ModelConfig.from_dict(json.loads((directory / CONFIG_NAME).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise GenofmInputError(f"{directory / CONFIG_NAME}: cannot read the model config: {err}") from err
        model = cls(cfg).to(map_location)  # load_model copies into the parameters where they are
        try:
            load_model(model, str(directory / WEIGHTS_NAME), strict=True, device=str(map_location))
        except (OSError, SafetensorError, RuntimeError) as err:
            raise GenofmInputError(f"{directory / WEIGHTS_NAME}: cannot load the weights "
                                   f"(corrupt, or from another model config): {err}") from err
        return model
