"""Load a trained model and its tokenizer, whichever stage asks: embedding, fine-tuning,
variant scoring and figures, Hugging Face export."""

from __future__ import annotations

from pathlib import Path

from .errors import GenofmInputError
from .model import DNALM
from .subword import SubwordTokenizer, load_tokenizer_spec
from .tokenizer import KmerTokenizer

Tokenizer = KmerTokenizer | SubwordTokenizer  # a model's tokenizer, whichever stage reads it


def tokenizer_label(tokenizer: Tokenizer) -> str:
    """What a report or VCF header says about the tokenizer: "k=6", "BPE, 4096 tokens"."""
    if isinstance(tokenizer, SubwordTokenizer):
        return f"{tokenizer.kind}, {tokenizer.vocab_size} tokens"
    return f"k={tokenizer.k}" + (", overlapping" if tokenizer.overlapping else "")


def load_model_and_tokenizer(model_dir: str | Path, device="cpu") -> tuple[DNALM, Tokenizer]:
    """A genofm model directory, a Hugging Face checkpoint directory, or a workflow model
    directory holding the pointer to an imported checkpoint (huggingface.json)."""
    from .hf import POINTER_NAME, is_hf_checkpoint, load_hf_checkpoint, load_pointer

    if (Path(model_dir) / POINTER_NAME).exists():
        directory, trust_remote_code = load_pointer(Path(model_dir) / POINTER_NAME)
        return load_hf_checkpoint(directory, device, trust_remote_code)
    if is_hf_checkpoint(model_dir):
        return load_hf_checkpoint(model_dir, device)
    model = DNALM.from_pretrained(model_dir, map_location=device).eval()
    spec = model.cfg.extra.get("tokenizer")
    # a BPE trained here: the model directory's tokenizer.json, checked against the spec
    tokenizer = load_tokenizer_spec(spec, model_dir) if spec else KmerTokenizer.load(model_dir)
    if tokenizer.vocab_size != model.cfg.vocab_size:
        raise GenofmInputError(f"{model_dir}: tokenizer vocabulary ({tokenizer.vocab_size}) does not match the model's")
    return model, tokenizer
