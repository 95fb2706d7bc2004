"""Hugging Face checkpoints: use published masked LMs (Nucleotide Transformer's `EsmForMaskedLM`)
from a local directory, and export genofm models as such checkpoints.

Import: `HFMaskedLM` wraps a local `EsmForMaskedLM` checkpoint (offline: `local_files_only`,
weights from safetensors only, never a pickle) behind the interface of `genofm.model.DNALM`
(`cfg`, `forward(ids, ...) -> ModelOutput`), so embedding, probes, fine-tuning and variant
scoring run on it unchanged. Its tokenizer comes from the checkpoint's own vocab.txt, which
must be a k-mer vocabulary in the Nucleotide Transformer layout (genofm's KmerTokenizer then
gives the same ids as the checkpoint's EsmTokenizer), or a genofm export's BPE tokenizer.json
(genofm.bpe). Hidden states are the checkpoint's own
(`hidden_states[-1]` after the final LayerNorm), as NT's usage reads them.

Export: `export_to_hf` writes a genofm masked LM as an `EsmForMaskedLM` checkpoint (config.json,
model.safetensors, vocab.txt, tokenizer_config.json; tokenizer.json in place of vocab.txt for a
BPE model) that `AutoModelForMaskedLM` and `AutoTokenizer` load, with the same logits and ids. ESM has exactly genofm's pre-LayerNorm blocks with
rotate-half RoPE (base 10000), GELU and an ESM-style LM head; other choices (ALiBi or learned
positions, SwiGLU, another RoPE base, the plain linear head, next-token models, overlapping
k-mers) have no ESM equivalent, and export refuses them naming the setting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .errors import GenofmInputError
from .files import tokenizer_files
from .model import DNALM, ModelOutput
from .tokenizer import MASK, PAD, SPECIAL_TOKENS, KmerTokenizer

POINTER_NAME = "huggingface.json"  # results/models/{model}/ of an imported checkpoint


@dataclass
class HFModelConfig:
    """What genofm reads off a checkpoint (the fields of ModelConfig that its code uses)."""

    vocab_size: int
    max_len: int
    n_layers: int
    d_model: int
    n_heads: int
    pad_id: int
    causal: bool = False
    extra: dict | None = None


def is_hf_checkpoint(directory: str | Path) -> bool:
    try:
        config = json.loads((Path(directory) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return "model_type" in config


def tokenizer_of_checkpoint(directory: str | Path) -> KmerTokenizer:
    """The k-mer tokenizer equal to the checkpoint's vocab.txt, or an error saying why not."""
    path = Path(directory) / "vocab.txt"
    try:
        vocab = [line.rstrip("\n") for line in path.read_text().splitlines()]
    except OSError as err:
        raise GenofmInputError(f"{path}: cannot read the checkpoint's vocabulary: {err}") from err
    kmers = [t for t in vocab if t not in SPECIAL_TOKENS and len(t) > 1]
    k = len(kmers[0]) if kmers else 1
    if 1 <= k <= 8 and KmerTokenizer(k=k).vocab == vocab:
        return KmerTokenizer(k=k)
    raise GenofmInputError(f"{path}: not a k-mer vocabulary in the Nucleotide Transformer layout "
                           f"({len(vocab)} tokens, starting {vocab[:8]}); genofm cannot tokenize for this model")


class HFMaskedLM(nn.Module):
    """A transformers EsmForMaskedLM behind DNALM's interface."""

    def __init__(self, hf_model, tokenizer: KmerTokenizer, source: str):
        super().__init__()
        self.hf = hf_model
        c = hf_model.config
        if c.position_embedding_type == "absolute":  # positions start after the padding index
            max_len = c.max_position_embeddings - c.pad_token_id - 1
        else:
            max_len = c.max_position_embeddings
        self.cfg = HFModelConfig(vocab_size=c.vocab_size, max_len=max_len, n_layers=c.num_hidden_layers,
                                 d_model=c.hidden_size, n_heads=c.num_attention_heads, pad_id=c.pad_token_id,
                                 extra={"tokenizer": {"k": tokenizer.k, "overlapping": False},
                                        "source": source, "architecture": type(hf_model).__name__})
        # peft target modules (fine-tuning): ESM's names for qkv / out / up / down
        self.lora_targets = ["query", "key", "value", "attention.output.dense", "intermediate.dense",
                             "output.dense"]
        self.ia3_targets, self.ia3_feedforward = ["key", "value", "output.dense"], ["output.dense"]

    def num_parameters(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n if embeddings else n - self.hf.esm.embeddings.word_embeddings.weight.numel()

    def forward(self, ids, attention_mask=None, output_hidden_states=False, output_attentions=False,
                logits_at=None, return_logits=True) -> ModelOutput:
        if ids.shape[1] > self.cfg.max_len:
            raise GenofmInputError(f"sequence of {ids.shape[1]} tokens is longer than the model's {self.cfg.max_len}")
        if attention_mask is None:
            attention_mask = ids != self.cfg.pad_id
        implementation = self.hf.config._attn_implementation
        if output_attentions and implementation != "eager":  # only the eager path returns attention maps
            self.hf.set_attn_implementation("eager")
            try:
                return self.forward(ids, attention_mask, output_hidden_states, True, logits_at, return_logits)
            finally:
                self.hf.set_attn_implementation(implementation)
        out = self.hf.esm(input_ids=ids, attention_mask=attention_mask.long(), output_hidden_states=output_hidden_states,
                          output_attentions=output_attentions, return_dict=True)
        last = out.last_hidden_state  # (B, L, D), after the final LayerNorm
        logits = None
        if return_logits:
            logits = self.hf.lm_head(last if logits_at is None else last[logits_at])  # (B, L, V) or (N, V)
        return ModelOutput(logits=logits, last_hidden=last,
                           hidden_states=list(out.hidden_states) if output_hidden_states else None,
                           attentions=list(out.attentions) if output_attentions else None)


def checkpoint_model_type(directory: Path) -> str:
    """The checkpoint's model_type, read from config.json as data (no code is run)."""
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise GenofmInputError(f"{path}: not a readable Hugging Face checkpoint config: {err}") from err
    if "model_type" not in config:
        raise GenofmInputError(f"{path}: no model_type: not a Hugging Face checkpoint config")
    return config["model_type"]


def load_hf_checkpoint(directory: str | Path, device="cpu",
                       trust_remote_code: bool = False) -> tuple[nn.Module, KmerTokenizer]:
    """A local checkpoint (no network, safetensors weights only): EsmForMaskedLM (Nucleotide
    Transformer), GPN, or another masked or causal LM over bases or k-mers (genofm.hf_lm)."""
    from transformers import AutoConfig, EsmForMaskedLM

    from .gpn import GPN_MODEL_TYPES, load_gpn_checkpoint

    directory = Path(directory)
    model_type = checkpoint_model_type(directory)
    if not (directory / "model.safetensors").exists():
        raise GenofmInputError(f"{directory}: no model.safetensors; genofm does not unpickle pytorch_model.bin "
                               "(convert it once, e.g. with transformers' save_pretrained(safe_serialization=True))")
    if model_type in GPN_MODEL_TYPES:
        return load_gpn_checkpoint(directory, device)
    if model_type != "esm":
        from .hf_lm import load_mapped_lm

        architectures = json.loads((directory / "config.json").read_text()).get("architectures") or [""]
        return load_mapped_lm(directory, architectures[0], trust_remote_code, device)
    if (directory / "tokenizer.json").exists() and not (directory / "vocab.txt").exists():
        from .subword import SubwordTokenizer

        tokenizer = SubwordTokenizer.load(directory / "tokenizer.json")  # a genofm export with its BPE
    else:
        tokenizer = tokenizer_of_checkpoint(directory)
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    if config.vocab_size != tokenizer.vocab_size:
        raise GenofmInputError(f"{directory}: vocab_size {config.vocab_size} differs from vocab.txt's {tokenizer.vocab_size}")
    model = EsmForMaskedLM.from_pretrained(directory, local_files_only=True, use_safetensors=True)
    return HFMaskedLM(model.to(device).eval(), tokenizer, str(directory)), tokenizer


def checkpoint_pointer(directory: str | Path, trust_remote_code: bool = False) -> dict:
    """What the import rule records about a checkpoint: its path, file checksums and whether
    its own code may run."""
    directory = Path(directory)
    load_hf_checkpoint(directory, trust_remote_code=trust_remote_code)  # fails here rather than in every rule
    files = {}
    for name in ("model.safetensors", *checked_files(directory, trust_remote_code)):
        digest = hashlib.sha256()
        with open(directory / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files[name] = f"sha256:{digest.hexdigest()}"
    return {"format": "genofm-huggingface-pointer/1", "path": str(directory.resolve()), "files": files,
            "trust_remote_code": trust_remote_code}


def checked_files(directory: Path, trust_remote_code: bool) -> list[str]:
    """The files an import vouches for besides the weights: config, tokenizer, and the
    checkpoint's own Python code when it may run."""
    code = sorted(p.name for p in directory.glob("*.py")) if trust_remote_code else []
    return ["config.json", *tokenizer_files(directory), *code]


def load_pointer(path: str | Path) -> tuple[Path, bool]:
    """(checkpoint directory, trust_remote_code) as an import recorded them, the directory's
    config, tokenizer and code checked unchanged since."""
    try:
        pointer = json.loads(Path(path).read_text())
        directory, trust = Path(pointer["path"]), bool(pointer.get("trust_remote_code", False))
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise GenofmInputError(f"{path}: not a genofm checkpoint pointer: {err}") from err
    for name in checked_files(directory, trust):
        digest = "sha256:" + hashlib.sha256((directory / name).read_bytes()).hexdigest()
        if digest != pointer["files"].get(name):
            raise GenofmInputError(f"{directory / name} changed since it was imported ({path}); rerun the import")
    return directory, trust


# --- export ---------------------------------------------------------------------------------

def exportable_problems(model: DNALM, tokenizer: KmerTokenizer) -> list[str]:
    cfg = model.cfg
    problems = []
    if cfg.causal:
        problems.append("next-token (causal) models have no ESM equivalent (ESM is a masked-LM encoder)")
    if cfg.position != "rope":
        problems.append(f"position {cfg.position!r}: ESM checkpoints take rotary (rope) positions here")
    elif cfg.rope_base != 10000.0:
        problems.append(f"rope_base {cfg.rope_base}: ESM's rotary embedding has base 10000")
    if cfg.ffn != "gelu":
        problems.append(f"ffn {cfg.ffn!r}: ESM's feed-forward is GELU")
    if cfg.lm_head != "esm":
        problems.append(f"lm_head {cfg.lm_head!r}: ESM's LM head is dense + GELU + LayerNorm + decoder (lm_head: esm)")
    if tokenizer.overlapping:
        problems.append("overlapping k-mers: EsmTokenizer cannot make them")
    if cfg.mixer != "attention":
        problems.append(f"mixer {cfg.mixer!r}: ESM's blocks are all attention (convolution blocks have no equivalent)")
    if cfg.aligned_species:
        problems.append("alignment-aware: ESM reads tokens only, not the aligned bases of other species")
    return problems


def export_to_hf(model: DNALM, tokenizer: KmerTokenizer, out_dir: str | Path) -> Path:
    """Write `model` as an EsmForMaskedLM checkpoint (safetensors) with its tokenizer files."""
    from transformers import EsmConfig, EsmForMaskedLM

    problems = exportable_problems(model, tokenizer)
    if problems:
        raise GenofmInputError("this model cannot be exported as an EsmForMaskedLM checkpoint: " + "; ".join(problems))
    cfg = model.cfg
    esm_cfg = EsmConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
                        num_attention_heads=cfg.n_heads, intermediate_size=cfg.d_ff, hidden_act="gelu",
                        max_position_embeddings=cfg.max_len, position_embedding_type="rotary", pad_token_id=PAD,
                        mask_token_id=MASK, token_dropout=False, emb_layer_norm_before=False,
                        layer_norm_eps=cfg.norm_eps, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        tie_word_embeddings=cfg.tie_embeddings, architectures=["EsmForMaskedLM"])
    hf = EsmForMaskedLM(esm_cfg).eval()
    missing, unexpected = hf.load_state_dict(esm_state_dict(model), strict=False)
    # ESM's contact-prediction head has no genofm counterpart: zeros, not random (the same file every time)
    others = [k for k in missing if not k.startswith("esm.contact_head.") and not k.endswith("inv_freq")
              and k != "lm_head.decoder.weight"]  # inv_freq: RoPE tables ESM computes itself
    if unexpected or others:
        raise GenofmInputError(f"export: weights without a counterpart: {sorted(unexpected) + sorted(others)}")
    with torch.no_grad():
        for p in hf.esm.contact_head.parameters():
            p.zero_()
    check_same_logits(model, hf)
    out_dir = Path(out_dir)
    hf.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_hf_vocab(out_dir)
    (out_dir / "genofm_config.json").write_text(json.dumps({"genofm_model_config": cfg.extra}, indent=2) + "\n")
    return out_dir


# genofm's weight names -> EsmForMaskedLM's: one table for the export and for init_from's import
ESM_NAMES = {"embed.weight": "esm.embeddings.word_embeddings.weight",
             "norm.weight": "esm.encoder.emb_layer_norm_after.weight",
             "norm.bias": "esm.encoder.emb_layer_norm_after.bias",
             "head_dense.weight": "lm_head.dense.weight", "head_dense.bias": "lm_head.dense.bias",
             "head_norm.weight": "lm_head.layer_norm.weight", "head_norm.bias": "lm_head.layer_norm.bias",
             "head.weight": "lm_head.decoder.weight", "head.bias": "lm_head.bias"}
# within block i (blocks.{i}. -> esm.encoder.layer.{i}.), weight and bias alike; ESM splits qkv
ESM_BLOCK_NAMES = {"attn.out": "attention.output.dense", "norm1": "attention.LayerNorm", "norm2": "LayerNorm",
                   "ffn.up": "intermediate.dense", "ffn.down": "output.dense"}
ESM_QKV = ("query", "key", "value")


def esm_state_dict(model: DNALM) -> dict[str, torch.Tensor]:
    """genofm's weights under EsmForMaskedLM's names."""
    s = {k: v.detach().clone() for k, v in model.state_dict().items()}
    d = model.cfg.d_model
    out = {esm: s[ours] for ours, esm in ESM_NAMES.items()}
    for i in range(model.cfg.n_layers):
        b, e = f"blocks.{i}.", f"esm.encoder.layer.{i}."
        for kind in ("weight", "bias"):
            qkv = s[b + f"attn.qkv.{kind}"]
            for j, name in enumerate(ESM_QKV):
                out[e + f"attention.self.{name}.{kind}"] = qkv[j * d:(j + 1) * d]
            for ours, esm in ESM_BLOCK_NAMES.items():
                out[e + f"{esm}.{kind}"] = s[b + f"{ours}.{kind}"]
    return out


@torch.no_grad()
def check_same_logits(model: DNALM, hf, atol: float = 1e-4) -> None:
    """Refuse an export whose logits differ from genofm's on a random batch with padding."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(6, model.cfg.vocab_size, (2, min(32, model.cfg.max_len)), generator=generator)
    ids[:, 0] = 3
    ids[1, -5:] = PAD
    mask = ids != PAD
    ours = model(ids).logits[mask]
    theirs = hf(input_ids=ids, attention_mask=mask.long()).logits[mask]
    diff = float((ours - theirs).abs().max())
    if diff > atol:
        raise GenofmInputError(f"the exported checkpoint's logits differ from genofm's by {diff:.2e}: not exported")
