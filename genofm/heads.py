"""A probe trained on every region of its task, kept to be applied to other regions (the predict
rule, trained-head variant effects). Saved as plain arrays (head.safetensors) and JSON
(head.json), never a pickle, and applied without scikit-learn: standardise, then the linear
model's or the MLP's layers.

head.json records what the probe was trained on, the model (a digest of its weights and
tokenizer files) and the embedding settings, so that a head is never applied to embeddings of
another kind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GenofmInputError

WEIGHTS, META = "head.safetensors", "head.json"
# the files of a model directory that decide its embeddings: weights (or the pointer to an
# imported checkpoint, which holds its files' digests), architecture and tokenizer
MODEL_FILES = ("model.safetensors", "huggingface.json", "config.json", "tokenizer_spec.json", "vocab.txt",
               "tokenizer_config.json", "tokenizer.json")
# the embedding settings that change what a region's vector means (not how it is batched)
EMBEDDING_KEYS = ("layer", "pooling", "center_tokens", "rc_average", "window_overlap")


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the model directory's weights, config and tokenizer files."""
    digest = hashlib.sha256()
    for name in MODEL_FILES:
        path = Path(model_dir) / name
        if path.is_file():
            digest.update(name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


@dataclass
class ProbeHead:
    """Standardisation, then dense layers (ReLU between them), then the output function:
    softmax or logistic (class probabilities) or identity (a value)."""

    objective: str  # classification | regression
    classes: list[str]  # classification: the class of each probability column
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    weights: list[np.ndarray]  # layer i: (in, out)
    biases: list[np.ndarray]  # layer i: (out,)
    output: str  # softmax | logistic | identity
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_estimator(cls, pipeline, objective: str, classes: list[str], meta: dict) -> ProbeHead:
        """From a fitted scikit-learn pipeline: StandardScaler + (LogisticRegression | Ridge(CV) |
        MLPClassifier | MLPRegressor)."""
        scaler, model = pipeline[0], pipeline[-1]
        if hasattr(model, "coefs_"):  # an MLP
            weights, biases, output = list(model.coefs_), list(model.intercepts_), model.out_activation_
            if model.activation != "relu":
                raise GenofmInputError(f"an MLP head with {model.activation} activations cannot be saved")
        else:
            coef = np.atleast_2d(model.coef_)  # (out, D)
            weights, biases = [coef.T], [np.atleast_1d(model.intercept_)]
            output = "identity" if objective == "regression" else "logistic" if coef.shape[0] == 1 else "softmax"
        return cls(objective, [str(c) for c in classes], np.asarray(scaler.mean_), np.asarray(scaler.scale_),
                   [np.asarray(w, dtype=np.float64) for w in weights],
                   [np.asarray(b, dtype=np.float64) for b in biases], output, meta)

    @property
    def n_features(self) -> int:
        return self.mean.size

    def logits(self, features):
        """(n, out) of (n, D) embeddings: the last layer's output before the output function. A
        numpy array gives numpy (float64); a torch tensor gives torch in its dtype and device, with
        gradients (genofm.attribution)."""
        if hasattr(features, "detach"):  # torch, imported only by its callers
            import torch

            def array(a):
                return torch.as_tensor(a, dtype=features.dtype, device=features.device)

            relu = torch.relu
        else:
            features, array = np.asarray(features, dtype=np.float64), np.asarray

            def relu(x):
                return np.maximum(x, 0.0)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise GenofmInputError(f"the head takes {self.n_features}-dimensional embeddings, not an array of shape "
                                   f"{tuple(features.shape)}")
        x = (features - array(self.mean)) / array(self.scale)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ array(w) + array(b)
            if i < len(self.weights) - 1:
                x = relu(x)
        return x

    def single_output(self, features: np.ndarray) -> np.ndarray:
        """(n,) the value (regression) or the log-odds of the second class (two classes)."""
        if self.output not in ("identity", "logistic"):
            raise GenofmInputError(f"a head with {len(self.classes)} classes has no single output")
        return self.logits(features)[:, 0]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n, C) class probabilities, or (n,) values, of (n, D) embeddings."""
        x = self.logits(features)
        if self.output == "identity":
            return x[:, 0]
        if self.output == "logistic":
            p = 1.0 / (1.0 + np.exp(-x[:, 0]))
            return np.stack([1 - p, p], axis=1)
        x = np.exp(x - x.max(axis=1, keepdims=True))
        return x / x.sum(axis=1, keepdims=True)

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"mean": self.mean, "scale": self.scale}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            tensors[f"layer{i}.weight"], tensors[f"layer{i}.bias"] = np.ascontiguousarray(w), b
        save_file(tensors, str(directory / WEIGHTS))
        meta = {"objective": self.objective, "classes": self.classes, "output": self.output,
                "layers": len(self.weights), **self.meta}
        (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> ProbeHead:
        from safetensors.numpy import load_file

        directory = Path(directory)
        for name in (WEIGHTS, META):
            if not (directory / name).is_file():
                raise GenofmInputError(f"{directory}: no {name}: not a saved probe head")
        meta = json.loads((directory / META).read_text())
        tensors = load_file(str(directory / WEIGHTS))
        layers = meta.pop("layers")
        objective, classes, output = meta.pop("objective"), meta.pop("classes"), meta.pop("output")
        return cls(objective, classes, tensors["mean"], tensors["scale"],
                   [tensors[f"layer{i}.weight"] for i in range(layers)],
                   [tensors[f"layer{i}.bias"] for i in range(layers)], output, meta)

    def check_compatible(self, model_dir: str | Path, embedding: dict, where: str) -> None:
        """Refuse embeddings from another model, tokenizer or embedding settings than the head's."""
        problems = []
        if self.meta.get("model_sha256") != model_fingerprint(model_dir):
            problems.append(f"the model in {model_dir} is not the one the probe was trained on (its weights or "
                            f"tokenizer differ: trained on {self.meta.get('tokenizer', '?')})")
        trained = self.meta.get("embedding", {})
        for key in EMBEDDING_KEYS:
            if trained.get(key) != embedding.get(key):
                problems.append(f"embeddings.{key} is {embedding.get(key)!r}; the probe was trained with "
                                f"{trained.get(key)!r}")
        if problems:
            raise GenofmInputError(f"{where}: the trained probe does not apply here:\n  " + "\n  ".join(problems)
                                   + "\nRetrain the probe (rerun its task) with these settings.")


def prediction_table(index, out: np.ndarray, objective: str, classes: list[str], source: str):
    """One row per region: its coordinates and name, then each class's probability and the most
    probable class, or the predicted value. `out`: (n, C) probabilities or (n,) values."""
    if len(index) == 0:
        raise GenofmInputError(f"{source}: no regions to predict")
    table = index[["chrom", "start", "end", "strand", "name"]].copy()
    if objective == "regression":
        table["prediction"] = out
        return table
    for c, name in enumerate(classes):
        table[f"p_{name}"] = out[:, c]
    table["predicted_class"] = np.asarray(classes)[out.argmax(axis=1)]
    return table


def predict_regions(head: ProbeHead, matrix: np.ndarray, index, source: str):
    """The probe's prediction table for embedded regions (their matrix and index)."""
    if len(index) == 0:  # before the head sees an empty matrix
        raise GenofmInputError(f"{source}: no regions to predict")
    return prediction_table(index, head.predict(matrix), head.objective, head.classes, source)
