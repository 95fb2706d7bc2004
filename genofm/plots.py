"""Plots for people (and for `snakemake --report`): written as PNG with matplotlib's Agg."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def save_png(fig, path: str | Path, dpi: float | str = "figure") -> None:
    """Write `fig` as PNG and close it. No software version in the metadata, so the bytes
    depend on the figure only (reproducible); dpi "figure": the figure's own."""
    fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def plot_loss(metrics: pd.DataFrame, unigram_entropy: float, path: str | Path) -> None:
    """Training and validation loss by step, with the context-free (unigram) baseline."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(metrics["step"], metrics["train_loss"], label="train", color="#4c72b0", lw=1.2)
    val = metrics.dropna(subset=["val_loss"])
    if len(val):
        ax.plot(val["step"], val["val_loss"], "o-", label="validation", color="#dd8452", ms=3)
    if math.isfinite(unigram_entropy):
        ax.axhline(unigram_entropy, ls="--", color="grey", lw=1, label=f"unigram entropy ({unigram_entropy:.2f})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per predicted token)")
    ax.set_title("Pretraining loss")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    save_png(fig, path)
