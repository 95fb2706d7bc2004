"""GPN checkpoints (Benegas et al.: character-level convolutional masked LMs, the `gpn` package)
behind the interface of `genofm.model.DNALM`, so that embedding, probes and variant scoring run
on them unchanged.

genofm's stages speak single-nucleotide `KmerTokenizer(k=1)` ids with a <cls> slot at position
0; GPN has no <cls> and its own ids (from the checkpoint's tokenizer files). `GPNMaskedLM`
translates ids on the way in, drops the <cls> slot, runs GPN's own modules, and maps the logits
back onto genofm's vocabulary (tokens GPN lacks get a very low logit). The <cls> slot's hidden
state is the mean of the sequence's states, so mean pooling over "<cls> + tokens" equals GPN's
own mean over the sequence. Scores are GPN's rule: the masked-marginal LLR, logit(ALT) −
logit(REF) at the masked base (a difference of logits: the same under any normalisation),
averaged over both strands with `rc_average`.

The `gpn` package (pure Python) declares Python >= 3.13 but runs on 3.11:
`pip install --no-deps --ignore-requires-python gpn==0.9.0 jaxtyping` (quickstart's test
setup does this). Only the checkpoint's config decides the architecture; weights are read from
model.safetensors only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .errors import GenofmInputError
from .hf import HFModelConfig
from .model import ModelOutput
from .tokenizer import CLS, MASK, PAD, UNK, KmerTokenizer

GPN_MODEL_TYPES = ("ConvNet", "GPN")  # the original GPN (ConvNetForMaskedLM) and GPNForMaskedLM
GPN_CONTEXT = 512  # bases: the window GPN-ss models are trained and scored on
MISSING_LOGIT = -1e4  # a genofm token the checkpoint has no id for: never predicted
INSTALL = "pip install --no-deps --ignore-requires-python gpn==0.9.0 jaxtyping"


def import_gpn():
    try:
        from gpn import register_auto_classes
    except ImportError as err:
        raise GenofmInputError(f"GPN checkpoints need the gpn package ({err}); install it with `{INSTALL}`") from err
    register_auto_classes("ss")


def id_map(hf_tokenizer, tokenizer: KmerTokenizer, source: str) -> torch.Tensor:
    """(V_genofm,) the checkpoint's id of each genofm token, -1 where it has none; the bases go
    through the checkpoint's own tokenizer (its normalizer decides case)."""
    bases = hf_tokenizer("ACGTN", add_special_tokens=False)["input_ids"]
    if len(bases) != 5:
        raise GenofmInputError(f"{source}: the tokenizer does not give one token per base ({bases} for 'ACGTN'); "
                               "genofm reads character-level GPN checkpoints")
    unk = hf_tokenizer.unk_token_id
    if unk in bases[:4] or len(set(bases[:4])) != 4:
        raise GenofmInputError(f"{source}: the tokenizer cannot encode A, C, G and T as four tokens ({bases[:4]})")
    mapping = torch.full((tokenizer.vocab_size,), -1, dtype=torch.long)
    for base, hf_id in zip("ACGTN", bases):
        mapping[tokenizer.token_to_id[base]] = hf_id
    for ours, theirs in ((MASK, hf_tokenizer.mask_token_id), (PAD, hf_tokenizer.pad_token_id), (UNK, unk)):
        if theirs is None:
            raise GenofmInputError(f"{source}: the tokenizer has no {('mask', 'pad', 'unk')[[MASK, PAD, UNK].index(ours)]} "
                                   "token")
        mapping[ours] = theirs
    return mapping


class GPNMaskedLM(nn.Module):
    """A GPN masked LM behind DNALM's interface (see the module docstring)."""

    def __init__(self, hf_model, mapping: torch.Tensor, source: str):
        super().__init__()
        self.hf = hf_model
        self.register_buffer("to_gpn", mapping.clamp(min=0), persistent=False)  # (V,) genofm id -> GPN id
        self.register_buffer("known", mapping >= 0, persistent=False)  # (V,) genofm tokens GPN has
        c = hf_model.config
        self.cfg = HFModelConfig(vocab_size=len(mapping), max_len=GPN_CONTEXT + 1,  # + the <cls> slot
                                 n_layers=getattr(c, "n_layers", None) or c.num_hidden_layers, d_model=c.hidden_size,
                                 n_heads=1, pad_id=PAD,
                                 extra={"tokenizer": {"k": 1, "overlapping": False}, "source": source,
                                        "architecture": c.architectures[0] if c.architectures else c.model_type})
        # peft adapters (fine-tuning): LoRA on every convolution and linear layer of GPN's encoder,
        # IA3 (which has no Conv1d) on the linear ones
        layers = {name: type(m) for name, m in hf_model.model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d))}
        self.lora_targets = [f"hf.model.{name}" for name in layers]
        self.ia3_targets = self.ia3_feedforward = [f"hf.model.{name}" for name, kind in layers.items()
                                                   if kind is nn.Linear]
        # GPN's convolutions pad with zeros and see no padding mask: zeroing the padded positions
        # of every convolution's input (at the transpose before it, so that LoRA's convolution sees
        # it too) gives each sequence of a padded batch exactly its unpadded result
        self.padding_mask: torch.Tensor | None = None  # (B, L) of the batch in flight
        feeds = [seq[i - 1] for seq in hf_model.model.modules() if isinstance(seq, nn.Sequential)
                 for i, child in enumerate(seq) if isinstance(child, nn.Conv1d) and i > 0]
        self.masks_padding = bool(feeds) and all("Transpose" in type(m).__name__ for m in feeds)
        if self.masks_padding:
            for module in feeds:
                module.register_forward_pre_hook(self.zero_padding)

    def num_parameters(self, embeddings: bool = True) -> int:
        return sum(p.numel() for p in self.parameters())

    def zero_padding(self, module, inputs):
        """Forward pre-hook before each convolution: (B, L, D) input, padded positions zeroed."""
        if self.padding_mask is None or bool(self.padding_mask.all()):
            return None
        return (inputs[0] * self.padding_mask[..., None].to(inputs[0].dtype), *inputs[1:])

    def forward(self, ids, attention_mask=None, output_hidden_states=False, output_attentions=False,
                logits_at=None, return_logits=True) -> ModelOutput:
        if output_hidden_states:
            raise GenofmInputError(f"{self.cfg.extra['source']}: GPN gives its last layer only "
                                   "(embeddings.layer: -1)")
        if not (ids[:, 0] == CLS).all():
            raise ValueError("genofm windows start with <cls>")
        body = ids[:, 1:]  # (B, L-1): GPN has no <cls>
        real = body != PAD if attention_mask is None else attention_mask[:, 1:].bool()
        lengths = real.sum(1)
        if self.masks_padding:
            self.padding_mask = real
            try:
                hidden = self.hf.model(input_ids=self.to_gpn[body]).last_hidden_state  # (B, L-1, D)
            finally:
                self.padding_mask = None
        else:  # an encoder whose convolutions cannot be masked: each length apart, unpadded
            hidden = torch.zeros(*body.shape, self.cfg.d_model, device=ids.device)  # (B, L-1, D)
            for length in lengths.unique().tolist():
                rows = (lengths == length).nonzero().squeeze(1)
                gpn_ids = self.to_gpn[body[rows, :length]]  # (b, length)
                hidden[rows, :length] = self.hf.model(input_ids=gpn_ids).last_hidden_state.to(hidden.dtype)
        mean = (hidden * real[..., None]).sum(1) / lengths.clamp(min=1)[:, None]  # (B, D)
        last = torch.cat([mean[:, None], hidden], dim=1)  # (B, L, D): the <cls> slot holds the mean
        logits = None
        if return_logits:
            gpn_logits = self.hf.cls(last[:, 1:])  # (B, L-1, V_gpn)
            ours = gpn_logits[..., self.to_gpn].masked_fill(~self.known, MISSING_LOGIT)  # (B, L-1, V)
            logits = torch.cat([torch.full_like(ours[:, :1], MISSING_LOGIT), ours], dim=1)  # (B, L, V)
            if logits_at is not None:
                logits = logits[logits_at]
        return ModelOutput(logits=logits, last_hidden=last, hidden_states=None,
                           attentions=[None] * self.cfg.n_layers if output_attentions else None)


def load_gpn_checkpoint(directory: Path, device="cpu") -> tuple[GPNMaskedLM, KmerTokenizer]:
    """A local GPN checkpoint: config.json, model.safetensors and the tokenizer files."""
    import_gpn()
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as err:
        raise GenofmInputError(f"{directory}: cannot read the checkpoint's tokenizer: {err}") from err
    tokenizer = KmerTokenizer(k=1)
    mapping = id_map(hf_tokenizer, tokenizer, str(directory))
    model = AutoModelForMaskedLM.from_pretrained(directory, local_files_only=True, use_safetensors=True)
    return GPNMaskedLM(model.to(device).eval(), mapping.to(device), str(directory)).to(device), tokenizer
