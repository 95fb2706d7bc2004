"""Continued pretraining (transfer): a model starts from another model's weights.

`models.<m>.init_from: <source>` trains m from the weights of the source model instead of a
random initialisation; the optimizer and the learning-rate schedule (warmup included) start
afresh. The source is a genofm model pretrained here, or an imported Hugging Face
EsmForMaskedLM (a Nucleotide Transformer or a genofm export), whose weights map exactly onto
genofm's (the inverse of genofm.hf's export, checked on the logits). The two must be the same
network over the same vocabulary:

- compared: every architecture setting that shapes the weights or what they compute, the
  objective (a masked-LM encoder or a next-token decoder) and the vocabulary (tokenizer k,
  overlapping, vocabulary size);
- free to differ: dropout (only training applies it); max_len when positions are rope or alibi
  (no position weights: a longer context reuses the same ones); aligned_species when the source
  has none: an alignment-aware model from a single-sequence one, its aligned-base embedding
  starting at zero, so that it starts as the source;
- not compared: settings that apply to neither model (conv_* between attention models,
  n_attention_layers outside hybrid, rope_base outside rope).

The rules check this before any job (rules/common.smk, on the config) and `check_fits` again on
the weights. This module imports torch only inside functions: the Snakefile reads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .config import ArchitectureConfig
from .errors import GenofmInputError

SOURCE_FAMILIES = ("genofm models pretrained here (models with genomes) and Hugging Face EsmForMaskedLM checkpoints "
                   "(model_type esm: Nucleotide Transformer, a genofm export)")
ARCHITECTURE_KEYS = [f.name for f in fields(ArchitectureConfig)]
TOKENIZER_KEYS = ("k", "overlapping")


# --- what must match (no torch: the rules use this too) -------------------------------------

def transfer_settings(architecture: dict, objective: str, aligned_species: list, vocab_size: int,
                      tokenizer: dict) -> dict:
    """The settings a source and its continued model are compared on, as one flat dict."""
    defaults = {f.name: f.default for f in fields(ArchitectureConfig)}
    return {**defaults, **{k: architecture[k] for k in ARCHITECTURE_KEYS if k in architecture},
            "objective": objective, "aligned_species": list(aligned_species), "vocab_size": vocab_size,
            **{k: tokenizer[k] for k in TOKENIZER_KEYS}}


def _applies(key: str, settings: dict) -> bool:
    if key.startswith("conv_"):
        return settings["mixer"] in ("conv", "hybrid")
    if key == "n_attention_layers":
        return settings["mixer"] == "hybrid"
    if key == "rope_base":
        return settings["position"] == "rope"
    return True


def differences(source: dict, target: dict) -> list[tuple[str, object, object]]:
    """(key, source value, target value) of each setting that must match and does not."""
    found = []
    for key in target:
        theirs, ours = source[key], target[key]
        if theirs == ours or key == "dropout":
            continue
        if key == "max_len" and source["position"] == target["position"] and target["position"] != "learned":
            continue  # rope and alibi have no position weights
        if key == "aligned_species" and not theirs:
            continue
        if _applies(key, source) or _applies(key, target):
            found.append((key, theirs, ours))
    return found


def config_key(model: str, key: str) -> str:
    """Where the workflow config sets `key` of model `model`."""
    if key in ARCHITECTURE_KEYS:
        return f"models.{model}.architecture.{key}"
    if key == "objective":
        return f"models.{model}.training.objective"
    if key == "aligned_species":
        return f"models.{model}.aligned_species"
    if key in TOKENIZER_KEYS:
        return f"tokenizer.{key}"
    return "the tokenizer's vocab_size"


def esm_settings(config: dict, where: str) -> dict:
    """A Hugging Face config.json of an EsmForMaskedLM as genofm's transfer settings (what genofm's
    network equal to it has), or an error naming what has no genofm counterpart."""
    from .tokenizer import KmerTokenizer

    model_type = config.get("model_type")
    if model_type != "esm":
        raise GenofmInputError(f"{where}: a {model_type!r} checkpoint cannot be continued by genofm's training loop; "
                               f"init_from takes {SOURCE_FAMILIES}")
    position = config.get("position_embedding_type", "absolute")
    problems = []
    if position not in ("rotary", "absolute"):
        problems.append(f"position_embedding_type {position!r} (genofm has rotary and absolute, as learned)")
    if config.get("token_dropout"):
        problems.append("token_dropout (ESM-2's rescaling of masked inputs)")
    if config.get("emb_layer_norm_before"):
        problems.append("emb_layer_norm_before (a LayerNorm after the embeddings)")
    if config.get("is_decoder"):
        problems.append("is_decoder")
    if problems:
        raise GenofmInputError(f"{where}: this ESM checkpoint has what genofm's network has not: " + "; ".join(problems))
    pad = config.get("pad_token_id", 1)
    positions = config["max_position_embeddings"]
    architecture = {
        # ESM's absolute positions start after the padding index
        "max_len": positions if position == "rotary" else positions - pad - 1,
        "n_layers": config["num_hidden_layers"], "d_model": config["hidden_size"],
        "n_heads": config["num_attention_heads"], "d_ff": config["intermediate_size"],
        "position": "rope" if position == "rotary" else "learned", "ffn": "gelu",
        "norm_eps": config.get("layer_norm_eps", 1e-12), "rope_base": 10000.0,
        "tie_embeddings": config.get("tie_word_embeddings", True), "lm_head": "esm", "mixer": "attention"}
    vocab_size = config["vocab_size"]
    k = next((k for k in range(1, 9) if KmerTokenizer(k=k).vocab_size == vocab_size), None)
    return transfer_settings(architecture, "mlm", [], vocab_size, {"k": k, "overlapping": False})


# --- the source's weights ------------------------------------------------------------------

@dataclass
class InitFrom:
    """What a training run starts from: the source model's name and its directory
    (results/models/{source}: model.safetensors, or the pointer of an imported checkpoint)."""

    model: str
    path: str


@dataclass
class Source:
    """A loaded source: genofm's network with its weights, its tokenizer spec, and what the
    continued model records of it (name, sha256 of its weights, its own provenance)."""

    model: object  # a genofm.model.DNALM
    tokenizer: dict
    record: dict


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_source(init_from: InitFrom) -> Source:
    """The source model of `init_from` as a genofm DNALM on the CPU."""
    from .hf import POINTER_NAME
    from .model import WEIGHTS_NAME, DNALM
    from .tokenizer import KmerTokenizer

    directory = Path(init_from.path)
    if (directory / POINTER_NAME).exists():
        return _imported_source(init_from, directory / POINTER_NAME)
    weights = directory / WEIGHTS_NAME
    if not weights.exists():
        raise GenofmInputError(f"init_from {init_from.model!r}: {weights} does not exist (train that model first)")
    model = DNALM.from_pretrained(directory)
    tokenizer = model.cfg.extra.get("tokenizer") or asdict(KmerTokenizer.load(directory).spec)
    record = {"model": init_from.model, "path": str(directory), "sha256": sha256_file(weights)}
    # its own provenance, and what it was itself continued from
    record |= {key: model.cfg.extra[key] for key in ("provenance", "init_from") if key in model.cfg.extra}
    return Source(model, tokenizer, record)


def _imported_source(init_from: InitFrom, pointer_path: Path) -> Source:
    from transformers import EsmForMaskedLM

    from .hf import check_same_logits, load_pointer, tokenizer_of_checkpoint

    where = f"init_from {init_from.model!r} ({pointer_path})"
    directory, _ = load_pointer(pointer_path)  # its config and tokenizer unchanged since the import
    settings = esm_settings(json.loads((directory / "config.json").read_text()), where)
    tokenizer = tokenizer_of_checkpoint(directory)
    hf = EsmForMaskedLM.from_pretrained(directory, local_files_only=True, use_safetensors=True).eval()
    model = dnalm_from_esm(hf, settings, asdict(tokenizer.spec))
    try:
        check_same_logits(model, hf)  # the mapping is exact, or nothing trains from it
    except GenofmInputError as err:
        raise GenofmInputError(f"{where}: genofm's network does not reproduce this checkpoint: {err}") from err
    pointer = json.loads(pointer_path.read_text())
    record = {"model": init_from.model, "huggingface": str(directory),
              "sha256": pointer["files"]["model.safetensors"].removeprefix("sha256:")}
    return Source(model, asdict(tokenizer.spec), record)


def dnalm_from_esm(hf, settings: dict, tokenizer: dict):
    """genofm's DNALM with the weights of an EsmForMaskedLM (the inverse of genofm.hf.esm_state_dict)."""
    import torch

    from .hf import ESM_BLOCK_NAMES, ESM_NAMES, ESM_QKV
    from .model import DNALM, ModelConfig

    cfg = ModelConfig(**{k: settings[k] for k in ARCHITECTURE_KEYS if k != "dropout"}, vocab_size=settings["vocab_size"],
                      pad_id=hf.config.pad_token_id, extra={"tokenizer": tokenizer})
    s = hf.state_dict()
    state = {ours: s[esm] for ours, esm in ESM_NAMES.items()}
    if cfg.position == "learned":  # ESM's absolute positions start after the padding index
        first = hf.config.pad_token_id + 1
        state["pos.weight"] = s["esm.embeddings.position_embeddings.weight"][first:first + cfg.max_len]
    for i in range(cfg.n_layers):
        b, e = f"blocks.{i}.", f"esm.encoder.layer.{i}."
        for kind in ("weight", "bias"):
            state[b + f"attn.qkv.{kind}"] = torch.cat([s[e + f"attention.self.{n}.{kind}"] for n in ESM_QKV])
            for ours, esm in ESM_BLOCK_NAMES.items():
                state[b + f"{ours}.{kind}"] = s[e + f"{esm}.{kind}"]
    model = DNALM(cfg)
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- the continued model ---------------------------------------------------------------------

def model_settings(cfg, tokenizer: dict) -> dict:
    """A genofm ModelConfig's transfer settings."""
    return transfer_settings(asdict(cfg), "clm" if cfg.causal else "mlm", cfg.aligned_species, cfg.vocab_size,
                             tokenizer)


def check_fits(source: Source, model_cfg, tokenizer: dict) -> None:
    """Refuse a source that is another network or vocabulary, naming each differing key."""
    differing = differences(model_settings(source.model.cfg, source.tokenizer), model_settings(model_cfg, tokenizer))
    if differing:
        name = source.record["model"]
        raise GenofmInputError(f"init_from {name!r}: the source is another network or vocabulary: "
                               + "; ".join(f"{key} is {theirs!r} in {name!r}, {ours!r} here"
                                           for key, theirs, ours in differing))


def initialise_from(model, source: Source) -> None:
    """Copy the source's weights into `model` (check_fits first). An alignment-aware model from a
    single-sequence source gets its aligned-base embedding at zero: it starts as the source."""
    import torch

    missing, unexpected = model.load_state_dict(source.model.state_dict(), strict=False)
    if unexpected or set(missing) - {"aligned.weight"}:
        raise GenofmInputError(f"init_from {source.record['model']!r}: weights without a counterpart: "
                               f"{sorted(unexpected) + sorted(set(missing) - {'aligned.weight'})}")
    if "aligned.weight" in missing:
        with torch.no_grad():
            model.aligned.weight.zero_()
