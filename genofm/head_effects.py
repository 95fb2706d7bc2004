"""Variant effects through a trained head (kipoi-veff's and Enformer's way): the change in a trained
probe's output from the REF to the ALT sequence of a window as long as the regions the probe
was trained on (their median length), centred on the variant and kept inside the contig.

The output read is the probe's value for a regression task, and for a two-class task the
log-odds of its second class (in sorted order: `promoter` of background/promoter), so that the
effect is additive and does not saturate as a probability would near 0 or 1. Both strands are
read when the embedding settings average them (embeddings.rc_average). Effects go into the
table as `head_<task>` and into the VCF as GFM_HEAD_<TASK>.
"""

from __future__ import annotations

import logging

import pysam

from .embed import EmbedConfig, Embedder
from .errors import GenofmInputError
from .heads import ProbeHead
from .vcf import SCORED_STATUSES, Allele

log = logging.getLogger(__name__)

HEAD_PREFIX = "head_"


def head_score_name(task: str) -> str:
    return HEAD_PREFIX + task


def head_info_key(task: str) -> str:
    return "GFM_HEAD_" + task.upper().replace("-", "_")


def head_output(head: ProbeHead) -> str:
    """What the effect measures, in words."""
    return "predicted value" if head.objective == "regression" else f"log-odds of class {head.classes[1]!r}"


class HeadEffects:
    """The trained heads of some probe tasks, scoring alleles through the model's embeddings."""

    def __init__(self, heads: dict[str, ProbeHead], model, tokenizer, fasta: pysam.FastaFile, embedding: EmbedConfig,
                 device="cpu", max_n_fraction: float = 0.1):
        if getattr(model.cfg, "aligned_species", []):
            raise GenofmInputError("trained-head variant effects read single sequences: an alignment-aware model's "
                                   "heads are not applied to variants")
        for task, head in heads.items():
            if head.objective == "classification" and len(head.classes) != 2:
                raise GenofmInputError(f"probe task {task!r} has {len(head.classes)} classes: trained-head variant "
                                       "effects take a regression or a two-class probe")
        self.heads, self.fasta, self.max_n_fraction = heads, fasta, max_n_fraction
        self.embedder = Embedder(model, tokenizer, embedding, device)
        self.passes = 0

    @property
    def score_names(self) -> list[str]:
        return [head_score_name(task) for task in self.heads]

    def info_descriptions(self) -> dict[str, tuple[str, str]]:
        """score name -> (INFO key, description)."""
        return {head_score_name(task): (head_info_key(task), (
            f"Trained-head effect of probe task {task}: its {head_output(head)} on the ALT minus on the REF "
            f"sequence of a {head.meta['region_length_median']} bp window centred on the variant; negative: the "
            "ALT lowers it")) for task, head in self.heads.items()}

    def window(self, a: Allele, width: int) -> tuple[int, int] | None:
        """[start, end) of the head's window around the allele, inside the contig; None if the
        contig is shorter than the window."""
        length = self.fasta.get_reference_length(a.ref_chrom)
        if length < width:
            return None
        start = a.pos + len(a.ref) // 2 - width // 2
        start = min(max(0, start), length - width)
        return start, start + width

    def score(self, alleles: list[Allele]) -> None:
        """Fill `a.scores[head_<task>]` of every scoreable allele whose window holds few Ns."""
        for width in sorted({int(h.meta["region_length_median"]) for h in self.heads.values()}):
            tasks = [t for t, h in self.heads.items() if int(h.meta["region_length_median"]) == width]
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
            ref_vectors = self.embedder.embed_sequences([refs[key] for key in keys]).numpy()  # (windows, D)
            alt_vectors = self.embedder.embed_sequences([alt for _, _, alt in jobs]).numpy()  # (alleles, D)
            self.passes += len(keys) + len(jobs)
            row = {key: i for i, key in enumerate(keys)}
            ref_rows = [row[key] for _, key, _ in jobs]
            for task in tasks:
                head = self.heads[task]
                effect = head.single_output(alt_vectors) - head.single_output(ref_vectors)[ref_rows]
                for (a, _, _), value in zip(jobs, effect.tolist()):
                    a.scores[head_score_name(task)] = value
