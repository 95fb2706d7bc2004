"""A saved fine-tune (rule finetune's model/ directory) applied to new sequences: the predict
rule's fine-tuned rows and trained-head variant effects through a fine-tuned model.

The directory holds peft's adapter (or, for full fine-tuning, the whole classifier) and
finetune.json; the backbone is loaded from the model directory it was trained from, which must
be the same model (weights and tokenizer: its fingerprint is checked).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .errors import GenofmInputError
from .finetune import FINETUNE_META, SequenceClassifier, batch, encode, to_device
from .heads import model_fingerprint
from .loading import load_model_and_tokenizer
from .sequence import reverse_complement


class FinetunedHead:
    """The fine-tuned model and what it outputs: class probabilities, or a value."""

    def __init__(self, model: torch.nn.Module, tokenizer, max_len: int, meta: dict):
        self.model, self.tokenizer, self.max_len, self.meta = model, tokenizer, max_len, meta

    @property
    def objective(self) -> str:
        return self.meta["objective"]

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def backbone(self) -> torch.nn.Module:
        """The DNALM inside the fine-tune (peft's adapters, if any, injected into its layers)."""
        from .model import DNALM

        return next(m for m in self.model.modules() if isinstance(m, DNALM))

    @classmethod
    def load(cls, directory: str | Path, model_dir: str | Path, device="cpu", where: str = "") -> FinetunedHead:
        """The fine-tune saved in `directory` on the backbone in `model_dir`; refused when the
        backbone is not the one it was trained from."""
        directory, where = Path(directory), where or str(directory)
        if not (directory / FINETUNE_META).is_file():
            raise GenofmInputError(f"{where}: {directory} has no {FINETUNE_META}: not a fine-tune saved by this "
                                   "version of genofm (rerun the task's finetune rule)")
        meta = json.loads((directory / FINETUNE_META).read_text())
        if meta["model_sha256"] != model_fingerprint(model_dir):
            raise GenofmInputError(f"{where}: the model in {model_dir} is not the one the fine-tune was trained from "
                                   "(its weights or tokenizer differ); rerun the task's finetune rule")
        backbone, tokenizer = load_model_and_tokenizer(model_dir, device)
        if getattr(backbone.cfg, "aligned_species", []):
            raise GenofmInputError(f"{where}: an alignment-aware model's fine-tune reads aligned bases, which only "
                                   "its own task's regions have")
        # fine-tunes saved before heads could max-pool recorded no pooling: theirs was the mean
        classifier = SequenceClassifier(backbone, max(1, len(meta["classes"])), meta.get("pooling", "mean")).to(device)
        if meta["method"] == "full":
            from safetensors.torch import load_model

            load_model(classifier, str(directory / "classifier.safetensors"), device=str(device))
            model = classifier
        else:
            from peft import PeftModel

            model = PeftModel.from_pretrained(classifier, str(directory))
        return cls(model.eval(), tokenizer, backbone.cfg.max_len, meta)

    @torch.no_grad()
    def logits(self, sequences: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, outputs) before softmax; a regression's standardised value in column 0."""
        examples = encode(sequences, self.tokenizer, self.max_len)
        device = next(self.model.parameters()).device
        out = [self.model(**to_device(batch(examples[lo:lo + batch_size]), device)).float().cpu()
               for lo in range(0, len(examples), batch_size)]
        return torch.cat(out).double().numpy()

    def predict(self, sequences: list[str]) -> np.ndarray:
        """(n, C) class probabilities, or (n,) values in the label's units."""
        x = self.logits(sequences)
        if self.objective == "regression":
            target = self.meta["target"]
            return x[:, 0] * target["sd"] + target["mean"]
        x = np.exp(x - x.max(axis=1, keepdims=True))
        return x / x.sum(axis=1, keepdims=True)

    def single_output(self, sequences: list[str]) -> np.ndarray:
        """(n,) the value (regression) or the log-odds of the second class (two classes), the
        mean over both strands: a variant's window has no orientation of its own."""
        if self.objective == "classification" and len(self.classes) != 2:
            raise GenofmInputError(f"a fine-tune with {len(self.classes)} classes has no single output")
        both = sequences + [reverse_complement(s) for s in sequences]
        if self.objective == "regression":
            values = self.predict(both)
        else:
            x = self.logits(both)
            values = x[:, 1] - x[:, 0]
        return (values[:len(sequences)] + values[len(sequences):]) / 2
