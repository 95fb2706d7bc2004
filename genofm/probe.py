"""Probes: classifiers or regressors on frozen embeddings, evaluated by cross-validation, each
beside the same estimator on k-mer frequency vectors (the baseline every result must beat).

Folds are k-fold (stratified by class for classification), or one fold per held-out contig
group when configured. Classification metrics are AUROC, AUPRC, MCC and accuracy with their
spread over folds (multi-class labels: one-vs-rest macro averages); regression metrics are
Spearman, Pearson and R² per fold and over all out-of-fold predictions. The probe is then fit on
every region and kept as a ProbeHead (genofm.heads) for the predict rule.
"""

from __future__ import annotations

import itertools
import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

from .config import ProbeConfig
from .errors import GenofmInputError
from .heads import ProbeHead
from .regions import labels_from_table  # noqa: F401 (the probe and fine-tune scripts read labels from here)
from .sequence import base_code_table

log = logging.getLogger(__name__)


def check_labels(labels: pd.Series, source: str, objective: str = "classification",
                 names: pd.Series | None = None) -> np.ndarray:
    """Class labels as strings, or regression labels as floats. Missing labels, a single class,
    classes that look like measurements, non-numeric or constant values: errors naming the
    source and the first region concerned."""
    names = pd.Series(range(1, len(labels) + 1)) if names is None else names
    if labels.isna().all():
        raise GenofmInputError(f"{source}: the regions have no labels (set label_column or label in the region set, "
                               "or the task's labels.tsv)")
    if labels.isna().any():
        missing = labels.isna().to_numpy()
        raise GenofmInputError(f"{source}: {int(missing.sum())} region(s) have no label, the first {names[missing].iloc[0]!r}")
    text = labels.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if objective == "regression":
        bad = numbers.isna().to_numpy() | ~np.isfinite(numbers.fillna(0).to_numpy())
        if bad.any():
            raise GenofmInputError(f"{source}: region {names[bad].iloc[0]!r} has the label {text[bad].iloc[0]!r}, not a "
                                   f"finite number ({int(bad.sum())} such): a regression task needs numbers (for "
                                   "class labels set objective: classification)")
        values = numbers.to_numpy(dtype=np.float64)
        if np.ptp(values) == 0:
            raise GenofmInputError(f"{source}: every region has the label {values[0]:g}: nothing to predict")
        return values
    values = text.to_numpy()
    classes = np.unique(values)
    if classes.size < 2:
        raise GenofmInputError(f"{source}: all regions carry the label {classes[0]!r}: a probe needs two classes or more")
    if numbers.notna().all() and classes.size > max(10, len(values) // 5):
        raise GenofmInputError(f"{source}: the labels are {classes.size} distinct numbers for {len(values)} regions, "
                               "which look like measurements, not classes: set the task's objective: regression")
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


def make_estimator(cfg: ProbeConfig):
    """The configured classifier or regressor behind a StandardScaler (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if cfg.objective == "regression":
        model = RidgeCV(alphas=np.logspace(-2, 5, 15)) if cfg.regressor == "ridge" else \
            MLPRegressor(hidden_layer_sizes=(128,), early_stopping=True, max_iter=500, random_state=cfg.seed)
    elif cfg.classifier == "logistic":
        model = LogisticRegression(max_iter=2000, C=1.0, random_state=cfg.seed)
    else:
        model = MLPClassifier(hidden_layer_sizes=(128,), early_stopping=True, max_iter=500, random_state=cfg.seed)
    return make_pipeline(StandardScaler(), model)


def folds_of(labels: np.ndarray, contigs: np.ndarray, cfg) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test indices of each fold (cfg: a FoldConfig)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if cfg.holdout_contigs:
        test = np.isin(contigs, cfg.holdout_contigs)
        if not test.any() or test.all():
            raise GenofmInputError(f"holdout_contigs {cfg.holdout_contigs} must leave regions on both sides "
                                   f"(the set has contigs {sorted(set(contigs))})")
        return [(np.flatnonzero(~test), np.flatnonzero(test))]
    if cfg.objective == "regression":
        if len(labels) < 2 * cfg.folds:
            raise GenofmInputError(f"{len(labels)} regions are too few for {cfg.folds}-fold cross-validation")
        return list(KFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed).split(labels))
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


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict:
    """Spearman and Pearson correlation and R² (a constant prediction correlates 0)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import r2_score

    flat = np.ptp(predicted) == 0
    return {"spearman": 0.0 if flat else float(spearmanr(y_true, predicted).statistic),
            "pearson": 0.0 if flat else float(pearsonr(y_true, predicted).statistic),
            "r2": float(r2_score(y_true, predicted))}


def cross_validate(features: np.ndarray, labels: np.ndarray, folds, cfg: ProbeConfig) -> tuple[dict, np.ndarray]:
    """Per-fold metrics summarised as mean and sd, and the out-of-fold class probabilities (n, C)
    or, for regression, predictions (n,) with the metrics over all of them as `overall`."""
    if cfg.objective == "regression":
        predicted = np.full(len(labels), np.nan)
        per_fold = []
        for train_idx, test_idx in folds:
            predicted[test_idx] = make_estimator(cfg).fit(features[train_idx], labels[train_idx]).predict(
                features[test_idx])
            per_fold.append(regression_metrics(labels[test_idx], predicted[test_idx]))
        tested = ~np.isnan(predicted)
        summary = summarise_folds(per_fold)
        for metric, value in regression_metrics(labels[tested], predicted[tested]).items():
            summary[metric]["overall"] = value
        return summary, predicted
    classes = np.unique(labels)
    proba = np.full((len(labels), len(classes)), np.nan)
    per_fold = []
    for train_idx, test_idx in folds:
        clf = make_estimator(cfg).fit(features[train_idx], labels[train_idx])
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


class ProbeResult(NamedTuple):
    metrics: dict
    predictions: pd.DataFrame  # out-of-fold, probe and baseline
    head: ProbeHead  # the probe fit on every region


def headline_metric(objective: str) -> str:
    """The metric a probe is judged by against its baseline."""
    return "spearman" if objective == "regression" else "auroc"


def run_probe(embeddings: np.ndarray, index: pd.DataFrame, sequences: list[str], cfg: ProbeConfig,
              source: str, head_meta: dict | None = None) -> ProbeResult:
    """Probe on embeddings and the k-mer baseline on the same folds, then the probe fit on every
    region (its head carries head_meta: what it was trained on)."""
    labels = check_labels(index["label"], source, cfg.objective, index["name"])
    folds = folds_of(labels, index["chrom"].to_numpy(), cfg)
    regression = cfg.objective == "regression"
    classes = np.array([]) if regression else np.unique(labels)
    results, predictions = {}, index[["chrom", "start", "end", "strand", "name"]].copy()
    predictions["label"] = labels
    predictions["fold"] = -1
    for k, (_, test_idx) in enumerate(folds):
        predictions.loc[predictions.index[test_idx], "fold"] = k
    features = np.asarray(embeddings, dtype=np.float64)
    baseline = f"kmer{cfg.baseline_k}_baseline"
    for method, x in (("probe", features), (baseline, kmer_frequencies(sequences, cfg.baseline_k))):
        results[method], out = cross_validate(x, labels, folds, cfg)
        if regression:
            predictions[f"{method}_prediction"] = out
        for c, name in enumerate(classes):
            predictions[f"{method}_p_{name}"] = out[:, c]
    cv = ("holdout contigs " + ",".join(cfg.holdout_contigs) if cfg.holdout_contigs
          else f"{len(folds)}-fold" if regression else f"stratified {len(folds)}-fold")
    metrics = {"objective": cfg.objective, "n_regions": int(len(labels)), "folds": len(folds), "cv": cv,
               "estimator": cfg.regressor if regression else cfg.classifier, "results": results}
    if regression:
        metrics["label_summary"] = {"mean": float(labels.mean()), "sd": float(labels.std()),
                                    "min": float(labels.min()), "max": float(labels.max())}
    else:
        metrics.update(classes=classes.tolist(), class_counts={str(c): int((labels == c).sum()) for c in classes})
    headline = headline_metric(cfg.objective)
    metrics["probe_beats_baseline"] = bool(results["probe"][headline]["mean"] > results[baseline][headline]["mean"])
    lengths = (index["end"] - index["start"]).to_numpy()
    meta = {"n_regions": int(len(labels)), "region_length_median": int(np.median(lengths)), **(head_meta or {})}
    head = ProbeHead.from_estimator(make_estimator(cfg).fit(features, labels), cfg.objective, classes.tolist(),
                                    meta)
    return ProbeResult(metrics, predictions, head)


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


def plot_scatter(predictions: pd.DataFrame, metrics: dict, path, title: str) -> None:
    """Observed vs out-of-fold predicted label, probe and baseline side by side."""
    from .plots import plt, save_png  # matplotlib with the Agg backend

    methods = list(metrics["results"])
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 4.3), dpi=110, sharex=True, sharey=True)
    observed = predictions["label"].to_numpy(dtype=float)
    for ax, method, color in zip(axes, methods, ["#4c72b0", "#dd8452"]):
        predicted = predictions[f"{method}_prediction"].to_numpy()
        result = metrics["results"][method]
        ax.scatter(observed, predicted, s=8, alpha=0.6, color=color)
        lo, hi = min(observed.min(), predicted.min()), max(observed.max(), predicted.max())
        ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1, label="predicted = observed")
        ax.set(xlabel="observed label", ylabel="predicted (out-of-fold)",
               title=f"{method}: Spearman {result['spearman']['overall']:.3f}, R² {result['r2']['overall']:.3f}")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def plot_probe(predictions: pd.DataFrame, metrics: dict, path, title: str) -> None:
    """ROC and precision-recall curves (classification) or observed-vs-predicted (regression)."""
    if metrics.get("objective") == "regression":
        plot_scatter(predictions, metrics, path, title)
    else:
        plot_curves(predictions, metrics, path, title)
