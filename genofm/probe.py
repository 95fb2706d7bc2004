"""Probes: classifiers on frozen embeddings, evaluated by cross-validation, each beside the same
classifier on k-mer frequency vectors (the baseline every result must beat).

Folds are stratified k-fold, or one fold per held-out contig group when configured. Metrics
are AUROC, AUPRC, MCC and accuracy with their spread over folds; multi-class labels use
one-vs-rest macro averages.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .config import ProbeConfig
from .errors import GenofmInputError
from .sequence import base_code_table


def check_labels(labels: pd.Series, source: str) -> np.ndarray:
    """Labels as strings; a missing label or a single class is an error naming the source."""
    if labels.isna().all():
        raise GenofmInputError(f"{source}: the regions have no labels (set label_column or label in the region set)")
    if labels.isna().any():
        missing = int(labels.isna().sum())
        raise GenofmInputError(f"{source}: {missing} region(s) have no label")
    values = labels.astype(str).to_numpy()
    classes = np.unique(values)
    if classes.size < 2:
        raise GenofmInputError(f"{source}: all regions carry the label {classes[0]!r}: a probe needs two classes or more")
    return values


def kmer_frequencies(sequences: list[str], k: int) -> np.ndarray:
    """(n, 4**k) overlapping k-mer frequencies (k-mers with N are skipped), upper-cased."""
    lut = base_code_table(other=4, dtype=np.int64)  # A=0 C=1 G=2 T=3, 4 for N and others
    out = np.zeros((len(sequences), 4**k))
    powers = 4 ** np.arange(k - 1, -1, -1)
    for row, seq in enumerate(sequences):
        codes = lut[np.frombuffer(seq.encode(), dtype=np.uint8)]
        if codes.size < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows < 4).all(axis=1)
        counts = np.bincount(windows[valid] @ powers, minlength=4**k)
        out[row] = counts / max(counts.sum(), 1)
    return out


def make_classifier(kind: str, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        model = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    elif kind == "mlp":
        model = MLPClassifier(hidden_layer_sizes=(128,), early_stopping=True, max_iter=500, random_state=seed)
    else:
        raise GenofmInputError(f"probe classifier must be logistic or mlp, not {kind!r}")
    return make_pipeline(StandardScaler(), model)


def folds_of(labels: np.ndarray, contigs: np.ndarray, cfg: ProbeConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    if cfg.holdout_contigs:
        test = np.isin(contigs, cfg.holdout_contigs)
        if not test.any() or test.all():
            raise GenofmInputError(f"holdout_contigs {cfg.holdout_contigs} must leave regions on both sides "
                                   f"(the set has contigs {sorted(set(contigs))})")
        return [(np.flatnonzero(~test), np.flatnonzero(test))]
    smallest = int(pd.Series(labels).value_counts().min())
    n_folds = min(cfg.folds, smallest)
    if n_folds < 2:
        raise GenofmInputError(f"a class has only {smallest} region(s): too few for cross-validation")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=cfg.seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def scores_and_metrics(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, average_precision_score, matthews_corrcoef, roc_auc_score

    predicted = classes[proba.argmax(axis=1)]
    if len(classes) == 2:
        positive = y_true == classes[1]
        auroc = roc_auc_score(positive, proba[:, 1])
        auprc = average_precision_score(positive, proba[:, 1])
    else:
        onehot = (y_true[:, None] == classes[None, :]).astype(int)
        auroc = roc_auc_score(onehot, proba, average="macro", multi_class="ovr")
        auprc = average_precision_score(onehot, proba, average="macro")
    return {"auroc": float(auroc), "auprc": float(auprc), "mcc": float(matthews_corrcoef(y_true, predicted)),
            "accuracy": float(accuracy_score(y_true, predicted))}


def cross_validate(features: np.ndarray, labels: np.ndarray, folds, cfg: ProbeConfig) -> tuple[dict, np.ndarray]:
    """Per-fold metrics summarised as mean and sd, and the out-of-fold class probabilities."""
    classes = np.unique(labels)
    proba = np.full((len(labels), len(classes)), np.nan)
    per_fold = []
    for train_idx, test_idx in folds:
        clf = make_classifier(cfg.classifier, cfg.seed).fit(features[train_idx], labels[train_idx])
        fold_proba = np.zeros((len(test_idx), len(classes)))
        fold_proba[:, np.searchsorted(classes, clf.classes_)] = clf.predict_proba(features[test_idx])
        proba[test_idx] = fold_proba
        per_fold.append(scores_and_metrics(labels[test_idx], fold_proba, classes))
    return summarise_folds(per_fold), proba


def summarise_folds(per_fold: list[dict]) -> dict:
    """{metric: {mean, sd, folds}} from one metrics dict per fold."""
    summary = {}
    for metric in per_fold[0]:
        values = np.array([f[metric] for f in per_fold])
        summary[metric] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                           "folds": values.round(6).tolist()}
    return summary


def run_probe(embeddings: np.ndarray, index: pd.DataFrame, sequences: list[str], cfg: ProbeConfig,
              source: str) -> tuple[dict, pd.DataFrame]:
    """Probe on embeddings and the k-mer baseline on the same folds: (metrics, predictions)."""
    labels = check_labels(index["label"], source)
    folds = folds_of(labels, index["chrom"].to_numpy(), cfg)
    classes = np.unique(labels)
    results, predictions = {}, index[["chrom", "start", "end", "strand", "name", "label"]].copy()
    predictions["fold"] = -1
    for k, (_, test_idx) in enumerate(folds):
        predictions.loc[predictions.index[test_idx], "fold"] = k
    for method, features in (("probe", np.asarray(embeddings, dtype=np.float64)),
                             (f"kmer{cfg.baseline_k}_baseline", kmer_frequencies(sequences, cfg.baseline_k))):
        results[method], proba = cross_validate(features, labels, folds, cfg)
        for c, name in enumerate(classes):
            predictions[f"{method}_p_{name}"] = proba[:, c]
    metrics = {"classes": classes.tolist(), "n_regions": int(len(labels)),
               "class_counts": {str(c): int((labels == c).sum()) for c in classes},
               "folds": len(folds), "cv": "holdout contigs " + ",".join(cfg.holdout_contigs) if cfg.holdout_contigs
               else f"stratified {len(folds)}-fold", "classifier": cfg.classifier, "results": results}
    best = results["probe"]["auroc"]["mean"] - results[f"kmer{cfg.baseline_k}_baseline"]["auroc"]["mean"]
    metrics["probe_beats_baseline"] = bool(best > 0)
    return metrics, predictions


def summary_rows(task: str, model: str, metrics: dict) -> list[dict]:
    """Rows of the cross-task summary table: one per method."""
    rows = []
    for method, result in metrics["results"].items():
        row = {"task": task, "model": model, "method": method, "n_regions": metrics["n_regions"], "cv": metrics["cv"]}
        for metric, value in result.items():
            row[metric] = f"{value['mean']:.3f} ± {value['sd']:.3f}"
        rows.append(row)
    return rows


def plot_curves(predictions: pd.DataFrame, metrics: dict, path, title: str) -> None:
    """ROC and precision-recall curves of the probe and the baseline (binary: the second
    class as positive; multi-class: micro-averaged one-vs-rest)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from .plots import plt, save_png  # matplotlib with the Agg backend

    classes = metrics["classes"]
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(9, 4), dpi=110)
    colors = itertools.cycle(["#4c72b0", "#dd8452", "#55a868"])
    for method, color in zip(metrics["results"], colors):
        proba = predictions[[f"{method}_p_{c}" for c in classes]].to_numpy()
        onehot = (predictions["label"].astype(str).to_numpy()[:, None] == np.array(classes)[None, :])
        if len(classes) == 2:
            truth, score = onehot[:, 1], proba[:, 1]
        else:
            truth, score = onehot.ravel(), proba.ravel()
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        auroc = metrics["results"][method]["auroc"]["mean"]
        roc_ax.plot(fpr, tpr, color=color, label=f"{method} (AUROC {auroc:.3f})")
        pr_ax.plot(recall, precision, color=color, label=method)
    roc_ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (out-of-fold)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)
