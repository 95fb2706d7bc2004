"""Variant effects through a trained head (kipoi-veff's and Enformer's way): the change in a trained
probe's output from the REF to the ALT sequence of a window as long as the regions the probe
was trained on (their median length), centred on the variant and kept inside the contig.

The output read is the probe's value for a regression task, and for a two-class task the
log-odds of its second class (in sorted order: `promoter` of background/promoter), so that the
effect is additive and does not saturate as a probability would near 0 or 1. Both strands are
read when the embedding settings average them (embeddings.rc_average). Effects go into the
table as `head_<task>` and into the VCF as GFM_HEAD_<TASK>.

A task's fine-tune (the model and its head trained end to end) scores the same way, reading the
window itself rather than its embedding, averaged over both strands: `head_<task>_finetuned`,
GFM_HEAD_<TASK>_FINETUNED.
"""

from __future__ import annotations

import logging

import numpy as np
import pysam

from .embed import EmbedConfig, Embedder
from .errors import GenofmInputError
from .finetuned import FinetunedHead
from .heads import ProbeHead
from .vcf import SCORED_STATUSES, Allele

log = logging.getLogger(__name__)

HEAD_PREFIX = "head_"
FINETUNED_SUFFIX = "_finetuned"


def head_score_name(task: str, finetuned: bool = False) -> str:
    return HEAD_PREFIX + task + (FINETUNED_SUFFIX if finetuned else "")


def head_info_key(task: str, finetuned: bool = False) -> str:
    return "GFM_HEAD_" + head_score_name(task, finetuned).removeprefix(HEAD_PREFIX).upper().replace("-", "_")


def head_output(head: ProbeHead | FinetunedHead) -> str:
    """What the effect measures, in words."""
    return "predicted value" if head.objective == "regression" else f"log-odds of class {head.classes[1]!r}"


def head_width(head: ProbeHead | FinetunedHead) -> int:
    """The window a head reads: the median length of the regions it was trained on."""
    return int(head.meta["region_length_median"])


class HeadEffects:
    """The trained heads of some probe tasks, scoring alleles: probes through the model's
    embeddings, fine-tunes through their own model."""

    def __init__(self, heads: dict[str, ProbeHead], model, tokenizer, fasta: pysam.FastaFile, embedding: EmbedConfig,
                 device="cpu", max_n_fraction: float = 0.1, finetuned: dict[str, FinetunedHead] | None = None):
        if heads and getattr(model.cfg, "aligned_species", []):
            raise GenofmInputError("trained-head variant effects read single sequences: an alignment-aware model's "
                                   "heads are not applied to variants")
        finetuned = finetuned or {}
        for task, head in [*heads.items(), *finetuned.items()]:
            if head.objective == "classification" and len(head.classes) != 2:
                raise GenofmInputError(f"probe task {task!r} has {len(head.classes)} classes: trained-head variant "
                                       "effects take a regression or a two-class probe")
        self.heads, self.finetuned, self.fasta, self.max_n_fraction = heads, finetuned, fasta, max_n_fraction
        self.embedder = Embedder(model, tokenizer, embedding, device) if heads else None
        self.passes = 0

    def _all(self):
        """(score name, task, head, finetuned) of every head."""
        return ([(head_score_name(t), t, h, False) for t, h in self.heads.items()]
                + [(head_score_name(t, True), t, h, True) for t, h in self.finetuned.items()])

    @property
    def score_names(self) -> list[str]:
        return [name for name, *_ in self._all()]

    def info_descriptions(self) -> dict[str, tuple[str, str]]:
        """score name -> (INFO key, description)."""
        return {name: (head_info_key(task, finetuned), (
            f"Trained-head effect of probe task {task}{' (its fine-tuned model, both strands)' if finetuned else ''}"
            f": its {head_output(head)} on the ALT minus on the REF sequence of a {head_width(head)} bp window "
            "centred on the variant; negative: the ALT lowers it")) for name, task, head, finetuned in self._all()}

    def window(self, a: Allele, width: int) -> tuple[int, int] | None:
        """[start, end) of the head's window around the allele, inside the contig; None if the
        contig is shorter than the window."""
        length = self.fasta.get_reference_length(a.ref_chrom)
        if length < width:
            return None
        start = a.pos + len(a.ref) // 2 - width // 2
        start = min(max(0, start), length - width)
        return start, start + width

    def _outputs(self, heads: list, sequences: list[str]) -> dict[str, np.ndarray]:
        """Each head's single output on the sequences; the probes share one embedding pass."""
        out = {}
        probes = [(name, head) for name, _, head, finetuned in heads if not finetuned]
        if probes:
            vectors = self.embedder.embed_sequences(sequences).numpy()  # (n, D)
            out |= {name: head.single_output(vectors) for name, head in probes}
        for name, _, head, finetuned in heads:
            if finetuned:
                out[name] = head.single_output(sequences)
        return out

    def score(self, alleles: list[Allele]) -> None:
        """Fill `a.scores[<head score name>]` of every scoreable allele whose window holds few Ns."""
        for width in sorted({head_width(head) for _, _, head, _ in self._all()}):
            heads = [h for h in self._all() if head_width(h[2]) == width]
            jobs, refs = [], {}
            for a in alleles:
                if a.status not in SCORED_STATUSES:
                    continue
                bounds = self.window(a, width)
                if bounds is None:
                    continue
                key = (a.ref_chrom, *bounds)
                if key not in refs:
                    refs[key] = self.fasta.fetch(*key).upper()
                seq = refs[key]
                if seq.count("N") > self.max_n_fraction * width:
                    continue
                rel = a.pos - bounds[0]
                jobs.append((a, key, seq[:rel] + a.alt + seq[rel + len(a.ref):]))
            if not jobs:
                continue
            keys = sorted({key for _, key, _ in jobs})
            ref_out = self._outputs(heads, [refs[key] for key in keys])  # per window
            alt_out = self._outputs(heads, [alt for _, _, alt in jobs])  # per allele
            self.passes += len(keys) + len(jobs)
            row = {key: i for i, key in enumerate(keys)}
            ref_rows = [row[key] for _, key, _ in jobs]
            for name, *_ in heads:
                effect = alt_out[name] - ref_out[name][ref_rows]
                for (a, _, _), value in zip(jobs, effect.tolist()):
                    a.scores[name] = value
