"""Fine-tuning: the pretrained model plus a classification or regression head, trained on a
labelled region set, fully or parameter-efficiently through peft (LoRA or IA3 on the attention and
feed-forward projections). Evaluated on the probes' folds with the probes' metrics, then
trained once more on every region and saved (peft's adapter format for LoRA/IA3).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn

from .alignment import padded_codes
from .config import FinetuneConfig
from .devices import bf16_autocast
from .errors import GenofmInputError
from .heads import model_fingerprint
from .loading import load_model_and_tokenizer
from .model import DNALM
from .probe import regression_metrics, scores_and_metrics, summarise_folds
from .tokenizer import CLS, PAD, KmerTokenizer

log = logging.getLogger(__name__)

FINETUNE_META = "finetune.json"


class SequenceClassifier(nn.Module):
    """A DNALM backbone, pooled over real tokens (mean, or each feature's max), and a linear head:
    one output per class, or one output for a regression (standardised target)."""

    def __init__(self, backbone: DNALM, n_classes: int, pooling: str = "mean"):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.classifier = nn.Linear(backbone.cfg.d_model, n_classes)  # not "head": that is the LM head

    def forward(self, ids: torch.Tensor, aligned: torch.Tensor | None = None) -> torch.Tensor:
        """ids: (B, L); aligned: (B, L, S) alignment codes, for an alignment-aware backbone."""
        real = (ids != PAD).unsqueeze(-1)  # (B, L, 1)
        extra = {} if aligned is None else {"aligned": aligned}
        states = self.backbone(ids, return_logits=False, **extra).last_hidden  # (B, L, D)
        if self.pooling == "max":
            pooled = states.masked_fill(~real, float("-inf")).amax(1)  # (B, D)
        else:
            pooled = (states * real).sum(1) / real.sum(1)  # (B, D)
        return self.classifier(pooled)  # (B, n_classes)


def wrap(classifier: SequenceClassifier, cfg: FinetuneConfig) -> nn.Module:
    """Full fine-tuning, or peft adapters on qkv/out/up/down with the classifier trained in full."""
    if cfg.method == "none":  # the config's way to say "no fine-tuning": the rule is not run
        raise GenofmInputError("fine-tuning method is none: nothing to fine-tune")
    if cfg.method == "full":
        return classifier
    from peft import IA3Config, LoraConfig, get_peft_model

    backbone = classifier.backbone  # a Hugging Face backbone names its projections its own way
    if cfg.method == "lora":
        targets = getattr(backbone, "lora_targets", ["qkv", "out", "up", "down"])
        peft_cfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=targets,
                              modules_to_save=["classifier"], lora_dropout=0.0)
    else:
        peft_cfg = IA3Config(target_modules=getattr(backbone, "ia3_targets", ["qkv", "up", "down"]),
                             feedforward_modules=getattr(backbone, "ia3_feedforward", ["down"]),
                             modules_to_save=["classifier"])
    return get_peft_model(classifier, peft_cfg)


class Example(NamedTuple):
    """One region's token body and, for alignment-aware models, its (tokens, S) alignment codes."""

    body: np.ndarray
    codes: np.ndarray | None = None


def encode(sequences: list[str], tokenizer: KmerTokenizer, max_len: int,
           aligned: list[np.ndarray] | None = None) -> list[Example]:
    """Token bodies, cut to the central max_len - 1 tokens when a region is longer, with their
    alignment codes cut alike (single-nucleotide tokens: row i is token i)."""
    ids, offsets = tokenizer.encode_batch(sequences, add_special_tokens=False)
    examples = []
    for i in range(len(sequences)):
        body = ids[offsets[i]:offsets[i + 1]]
        codes = None if aligned is None else aligned[i]
        if codes is not None and len(codes) != body.size:
            raise GenofmInputError(f"region {i + 1}: {len(codes)} aligned columns for {body.size} tokens")
        if body.size > max_len - 1:
            start = (body.size - (max_len - 1)) // 2
            body = body[start:start + max_len - 1]
            codes = None if codes is None else codes[start:start + max_len - 1]
        examples.append(Example(body.astype(np.int64), codes))
    return examples


def batch(examples: list[Example]) -> dict[str, torch.Tensor]:
    """The classifier's inputs: ids (B, L) and, with codes, aligned (B, L, S)."""
    width = max(e.body.size for e in examples) + 1
    ids = torch.full((len(examples), width), PAD, dtype=torch.long)
    ids[:, 0] = CLS
    for i, e in enumerate(examples):
        ids[i, 1:1 + e.body.size] = torch.from_numpy(e.body)
    if examples[0].codes is None:
        return {"ids": ids}
    return {"ids": ids, "aligned": torch.from_numpy(padded_codes([e.codes for e in examples], width))}


def to_device(inputs: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in inputs.items()}


def train_classifier(backbone: DNALM, examples: list[Example], targets: np.ndarray, n_classes: int,
                     cfg: FinetuneConfig, device: torch.device = torch.device("cpu")) -> nn.Module:
    """Fine-tune a copy of the backbone on `device` (bf16 autocast on CUDA). Integer targets are
    class indices (cross-entropy); float targets, with n_classes 1, a standardised value (MSE)."""
    torch.manual_seed(cfg.seed)
    regression = np.issubdtype(targets.dtype, np.floating)
    model = wrap(SequenceClassifier(copy.deepcopy(backbone), n_classes, cfg.pooling).to(device), cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    rng = np.random.default_rng(cfg.seed)
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(examples))
        total = 0.0
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            with bf16_autocast(device):
                logits = model(**to_device(batch([examples[i] for i in idx]), device))
            target = torch.from_numpy(targets[idx]).to(device)
            loss = (nn.functional.mse_loss(logits.float()[:, 0], target.float()) if regression
                    else nn.functional.cross_entropy(logits.float(), target))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += float(loss.detach()) * len(idx)
        log.info("  epoch %d/%d: training loss %.4f", epoch + 1, cfg.epochs, total / len(order))
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, examples, batch_size: int = 64, regression: bool = False) -> np.ndarray:
    """Class probabilities (n, C), or the head's value (n,) for regression, on the model's device."""
    device = next(model.parameters()).device
    out = []
    for lo in range(0, len(examples), batch_size):
        with bf16_autocast(device):
            logits = model(**to_device(batch(examples[lo:lo + batch_size]), device)).float()
        out.append(logits[:, 0].cpu() if regression else torch.softmax(logits, dim=-1).cpu())
    return torch.cat(out).numpy()


class Standardised(NamedTuple):
    """A regression target's mean and sd on the training regions: the head learns (y - mean) / sd."""

    mean: float
    sd: float

    @classmethod
    def of(cls, values: np.ndarray) -> Standardised:
        return cls(float(values.mean()), float(values.std()) or 1.0)

    def scaled(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.sd).astype(np.float32)

    def unscaled(self, values: np.ndarray) -> np.ndarray:
        return values * self.sd + self.mean


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def cross_validate_finetune(model_dir: str | Path, sequences: list[str], labels: np.ndarray, folds,
                            cfg: FinetuneConfig, out_dir: str | Path | None = None,
                            device: str | torch.device = "cpu",
                            aligned: list[np.ndarray] | None = None) -> tuple[dict, np.ndarray]:
    """Fine-tune on each fold's training regions, score its test regions; then, if out_dir is
    given, fine-tune on all regions and save the model (adapter + head for peft methods).
    Float labels train a regression head (Spearman, Pearson, R²; out-of-fold values returned),
    string labels a classifier (class probabilities returned). `aligned`: each region's
    alignment codes (AlignedColumns.region_codes), which an alignment-aware model reads."""
    torch.set_flush_denormal(True)
    device = torch.device(device)
    backbone, tokenizer = load_model_and_tokenizer(model_dir, device)
    if getattr(backbone.cfg, "aligned_species", []) and aligned is None:
        raise GenofmInputError(f"{model_dir}: an alignment-aware model is fine-tuned with the regions' aligned bases")
    log.info("fine-tuning on %s", device)
    examples = encode(sequences, tokenizer, backbone.cfg.max_len, aligned)
    task = _Task.of(labels)
    out = np.full((len(labels), *task.output_shape), np.nan)
    per_fold = []
    for k, (train_idx, test_idx) in enumerate(folds):
        log.info("fold %d/%d: %s fine-tuning%s on %d regions", k + 1, len(folds), cfg.method,
                 " (regression)" if task.regression else "", len(train_idx))
        targets, scale = task.targets(train_idx)
        model = train_classifier(backbone, [examples[i] for i in train_idx], targets, task.n_outputs, cfg, device)
        out[test_idx] = task.outputs(model, [examples[i] for i in test_idx], scale)
        per_fold.append(task.metrics(test_idx, out[test_idx]))
    summary = summarise_folds(per_fold)
    if task.regression:
        tested = ~np.isnan(out)
        for metric, value in regression_metrics(labels[tested], out[tested]).items():
            summary[metric]["overall"] = value
    if out_dir is not None:
        targets, scale = task.targets(np.arange(len(labels)))
        final = train_classifier(backbone, examples, targets, task.n_outputs, cfg, device)
        trainable, total = trainable_parameters(final)
        summary["trainable_parameters"] = {"trainable": trainable, "total": total}
        save(final.cpu(), cfg, Path(out_dir), finetune_meta(model_dir, sequences, task.classes, scale))
    return summary, out


class _Task(NamedTuple):
    """What the head learns from the labels: class indices, or a value standardised on the
    regions it is trained on."""

    labels: np.ndarray
    classes: np.ndarray | None  # None for a regression

    @classmethod
    def of(cls, labels: np.ndarray) -> _Task:
        return cls(labels, None if np.issubdtype(labels.dtype, np.floating) else np.unique(labels))

    @property
    def regression(self) -> bool:
        return self.classes is None

    @property
    def n_outputs(self) -> int:
        return 1 if self.regression else len(self.classes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return () if self.regression else (len(self.classes),)

    def targets(self, idx: np.ndarray) -> tuple[np.ndarray, Standardised | None]:
        if self.regression:
            scale = Standardised.of(self.labels[idx])
            return scale.scaled(self.labels[idx]), scale
        return np.searchsorted(self.classes, self.labels[idx]), None

    def outputs(self, model: nn.Module, examples: list[Example], scale: Standardised | None) -> np.ndarray:
        if self.regression:
            return scale.unscaled(predict(model, examples, regression=True))
        return predict(model, examples)

    def metrics(self, idx: np.ndarray, out: np.ndarray) -> dict:
        if self.regression:
            return regression_metrics(self.labels[idx], out)
        return scores_and_metrics(self.labels[idx], out, self.classes)


def save(model: nn.Module, cfg: FinetuneConfig, out_dir: Path, meta: dict) -> None:
    """peft methods: peft's save_pretrained (adapter_config.json + adapter_model.safetensors,
    head included); full: the classifier's state as safetensors. Then finetune.json: the
    method, the head's pooling, the classes or the regression target's scale, and what the model
    was trained on (FinetunedHead reads it back)."""
    import json

    from safetensors.torch import save_model

    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.method == "full":
        save_model(model, str(out_dir / "classifier.safetensors"))
    else:
        model.save_pretrained(str(out_dir))
        # peft writes module-name sets in hash order: sort them so reruns give identical bytes
        config_path = out_dir / "adapter_config.json"
        config = json.loads(config_path.read_text())
        for key, value in config.items():
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                config[key] = sorted(value)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    meta = {"method": cfg.method, "pooling": cfg.pooling, **meta}
    (out_dir / FINETUNE_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def finetune_meta(model_dir, sequences: list[str], classes: np.ndarray | None = None,
                  target: Standardised | None = None) -> dict:
    """What a saved fine-tune records besides its weights: the classes (in output order) or the
    regression target's mean and sd, the backbone's fingerprint and the regions' median length
    (the window of its variant effects)."""
    return {"objective": "classification" if target is None else "regression",
            "classes": [] if classes is None else [str(c) for c in classes],
            "target": None if target is None else target._asdict(),
            "model_sha256": model_fingerprint(model_dir),
            "region_length_median": int(np.median([len(s) for s in sequences]))}
