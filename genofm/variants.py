"""Score every record of a VCF and write the annotated VCF (+ tabix index), a table and a summary.

Streaming: records are read, scored and written `chunk_records` at a time, so memory stays
bounded on VCFs of millions of records. Every input record comes out, in input order; those
that cannot be scored carry a status in GFM_STATUS and in the table. All outputs are written
to temporary files and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pysam

from .atomic import atomic_paths
from .config import CallsetConfig
from .errors import GenofmInputError
from .loading import load_model_and_tokenizer
from .markov import MarkovModel
from .provenance import provenance
from .variant_scoring import ScoringConfig, VariantScorer
from .vcf import STATUSES, AlleleChecker, info_fields, iter_records, open_vcf, readable_vcf, scan_vcf
from .vcf_writer import annotated_header, annotated_line, write_bgzip_vcf_index

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["record", "chrom", "pos", "id", "ref", "alt", "kind", "class", "status", "window",
                 "llr", "llr_fwd", "llr_rev", "lldiff", "influence", "emb_cosine", "emb_l2", "markov"]
# REF checks that count towards the "another genome build?" warning
_CHECKED = ("OK", "NEAR_CONTIG_END", "N_IN_WINDOW", "REF_MISMATCH", "ALT_NOT_ACGT", "OUTSIDE_REGIONS")


_SCORE_COLUMNS = TABLE_COLUMNS[TABLE_COLUMNS.index("llr"):]


def table_row(a) -> list:
    scores = a.scores
    return [a.record + 1, a.chrom, a.pos + 1, a.vcf_id, a.ref, a.alt, a.kind, a.variant_class, a.status,
            scores.get("window", "")] + [f"{scores[c]:.6g}" if c in scores else "" for c in _SCORE_COLUMNS]


def warn_on_mismatches(statuses: Counter, path) -> None:
    checked = sum(statuses[s] for s in _CHECKED)
    mismatched = statuses["REF_MISMATCH"]
    if mismatched and mismatched > 0.2 * checked:
        log.warning("!" * 80)
        log.warning("%s: %d of %d checked alleles (%.0f%%) have a REF that differs from the reference: "
                    "is the VCF on another genome build?", path, mismatched, checked, 100 * mismatched / checked)
        log.warning("!" * 80)
    elif mismatched:
        log.warning("%s: %d of %d checked alleles have a REF that differs from the reference (REF_MISMATCH)",
                    path, mismatched, checked)
    if statuses["UNKNOWN_CONTIG"]:
        log.warning("%s: %d alleles are on contigs the reference does not have (UNKNOWN_CONTIG); "
                    "contig_aliases maps names", path, statuses["UNKNOWN_CONTIG"])


def score_vcf(model_dir: str | Path, fasta_path: str | Path, vcf_path: str | Path, out_vcf: str | Path,
              out_table: str | Path, out_summary: str | Path, cfg: ScoringConfig, callset: CallsetConfig,
              meta: dict | None = None, device: str = "cpu", baseline: MarkovModel | None = None) -> dict:
    """Score `vcf_path`; writes out_vcf (bgzip) + out_vcf.tbi, out_table (TSV), out_summary (JSON).
    With a Markov `baseline`, SNVs also get its score (column and INFO `markov`) beside the model's."""
    model, tokenizer = load_model_and_tokenizer(model_dir, device)
    with readable_vcf(vcf_path) as readable:
        return _score_vcf(model, tokenizer, model_dir, fasta_path, readable, vcf_path, out_vcf, out_table,
                          out_summary, cfg, callset, meta, device, baseline)


def _score_vcf(model, tokenizer, model_dir, fasta_path, readable, vcf_path, out_vcf, out_table, out_summary,
               cfg, callset, meta, device, baseline=None) -> dict:
    scan = scan_vcf(readable, vcf_path)
    log.info("%s: %d records on %d contigs", vcf_path, scan.n_records, len(scan.contigs))
    out_tbi = Path(str(out_vcf) + ".tbi")
    started = time.perf_counter()
    with pysam.FastaFile(str(fasta_path)) as fasta, \
            atomic_paths(out_vcf, out_table, out_summary, out_tbi) as (tmp_vcf, tmp_table, tmp_summary, tmp_tbi):
        checker = AlleleChecker(fasta, callset.contig_aliases, callset.regions, callset.class_info_key)
        scorer = VariantScorer(model, tokenizer, fasta, cfg, device)
        score_names = scorer.score_names + (["markov"] if baseline else [])
        fields = info_fields(score_names, baseline.order if baseline else 0)
        score_baseline = (lambda alleles: markov_scores(baseline, fasta, alleles)) if baseline else (lambda _: None)
        header_meta = {
            "genofm_model": {"Path": str(model_dir), "Objective": "clm" if model.cfg.causal else "mlm",
                             "Parameters": model.num_parameters(), "Tokenizer": f"k={tokenizer.k}"},
            "genofm_scoring": {"Window": scorer.window_tokens * tokenizer.k, "Reference": str(fasta_path),
                               **{k: v for k, v in asdict(cfg).items() if k != "window"}},
            **(meta or {}),
        }
        statuses: Counter = Counter()
        n_out = n_alleles = 0
        with open_vcf(readable, vcf_path) as vcf, pysam.BGZFile(str(tmp_vcf), "wb") as out, \
                open(tmp_table, "w", newline="") as table_file:
            out.write(annotated_header(scan.header_text, fields, header_meta).encode())
            table = csv.writer(table_file, delimiter="\t", lineterminator="\n")
            table.writerow(TABLE_COLUMNS)
            chunk: list = []
            for number, record in iter_records(vcf, vcf_path):
                chunk.append((number, record))
                if len(chunk) == cfg.chunk_records:
                    n_out, n_alleles = _flush(chunk, checker, scorer, score_baseline, fields, out, table, statuses,
                                              n_out, n_alleles)
                    chunk = []
                    rate = n_alleles / (time.perf_counter() - started)
                    log.info("scored %d/%d records (%.0f variants/s, ETA %.0f s)", n_out, scan.n_records, rate,
                             (scan.n_records - n_out) * n_alleles / n_out / rate)
            if chunk:
                n_out, n_alleles = _flush(chunk, checker, scorer, score_baseline, fields, out, table, statuses,
                                          n_out, n_alleles)
        if n_out != scan.n_records:
            raise GenofmInputError(f"{vcf_path}: read {n_out} records but the first pass counted {scan.n_records}")
        os.replace(write_bgzip_vcf_index(tmp_vcf), tmp_tbi)
        warn_on_mismatches(statuses, vcf_path)
        seconds = time.perf_counter() - started
        summary = {
            "vcf": str(vcf_path), "records_in": scan.n_records, "records_out": n_out, "alleles": n_alleles,
            "statuses": {s: statuses[s] for s in STATUSES if statuses[s]},
            "forward_passes": dict(sorted(scorer.passes.items())),
            "scores": score_names, "markov_order": baseline.order if baseline else None, "window_bases": scorer.window_tokens * tokenizer.k,
            "scoring": asdict(cfg), "callset": asdict(callset), "model": str(model_dir),
            "provenance": provenance(),
        }
        Path(tmp_summary).write_text(json.dumps(summary, indent=2) + "\n")
    log.info("%d records, %d alleles in %.1f s; statuses %s", n_out, n_alleles, seconds, dict(statuses))
    return summary


def markov_scores(baseline: MarkovModel, fasta: pysam.FastaFile, alleles) -> None:
    """The Markov baseline's log-likelihood difference of each scorable SNV, into a.scores."""
    snvs = [a for a in alleles if a.status in ("OK", "NEAR_CONTIG_END") and a.kind == "snv"]
    k = baseline.order
    windows = [fasta.fetch(a.ref_chrom, a.pos - k, a.pos + k + 1) if a.pos >= k else "" for a in snvs]
    for a, score in zip(snvs, baseline.score_windows(windows, [a.alt for a in snvs])):
        if score == score:  # not NaN: a window cut by a contig end or holding an N has no score
            a.scores["markov"] = float(score)


def _flush(chunk, checker, scorer, score_baseline, fields, out, table, statuses, n_out, n_alleles):
    """Check, score and write one chunk of records; returns the updated counts."""
    per_record = [checker.alleles(number, record) for number, record in chunk]
    scorer.score([a for alleles in per_record for a in alleles])
    score_baseline([a for alleles in per_record for a in alleles])
    for (_, record), alleles in zip(chunk, per_record):
        out.write(annotated_line(record, alleles, fields).encode())
        for a in alleles:
            table.writerow(table_row(a))
            statuses[a.status] += 1
    return n_out + len(chunk), n_alleles + sum(len(a) for a in per_record)
