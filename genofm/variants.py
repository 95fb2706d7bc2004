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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pysam

from .atomic import atomic_paths
from .config import CallsetConfig
from .alignment import AlignedColumns
from .conservation import PhylopScorer
from .embed import EmbedConfig
from .errors import GenofmInputError
from .head_effects import HeadEffects
from .loading import load_model_and_tokenizer, tokenizer_label
from .markov import MarkovModel
from .model import DNALM
from .provenance import provenance
from .tokenizer import KmerTokenizer
from .variant_scoring import ScoringConfig, VariantScorer
from .vcf import (SCORED_STATUSES, STATUSES, AlleleChecker, InfoField, info_fields, iter_records, open_vcf,
                  readable_vcf, scan_vcf)
from .vcf_writer import annotated_header, annotated_line, write_bgzip_vcf_index

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["record", "chrom", "pos", "id", "ref", "alt", "kind", "class", "codon_position", "status", "window",
                 "llr", "llr_fwd", "llr_rev", "pll", "lldiff", "influence", "emb_cosine", "emb_l2", "markov", "phylop"]
# REF checks that count towards the "another genome build?" warning
_CHECKED = ("OK", "NEAR_CONTIG_END", "N_IN_WINDOW", "REF_MISMATCH", "ALT_NOT_ACGT", "OUTSIDE_REGIONS")
# statuses of records left out by choice (regions) or by nature (no ALT, symbolic): they do not
# count towards CallsetConfig.max_unscored_fraction
_LEFT_OUT = ("OUTSIDE_REGIONS", "NO_ALT", "SYMBOLIC_ALLELE")


_SCORE_COLUMNS = TABLE_COLUMNS[TABLE_COLUMNS.index("llr"):]


@dataclass(frozen=True)
class ScoringInputs:
    """What a scoring run reads: the model, the reference, the VCF and, optionally, a Markov
    baseline whose score SNVs also get (column and INFO `markov`) beside the model's, and a
    conservation scorer (phyloP against the genome's alignment: column `phylop`)."""

    model_dir: str | Path
    fasta: str | Path
    vcf: str | Path
    baseline: MarkovModel | None = None
    conservation: PhylopScorer | None = None
    alignment: str | Path | None = None  # the genome's alignment arrays (read by alignment-aware models)
    callset_key: str = "variants.<callset>"  # where the config sets the call set: messages name its keys
    heads: dict = field(default_factory=dict)  # probe task -> its trained ProbeHead: trained-head effects
    head_embedding: EmbedConfig | None = None  # the embedding settings the heads were trained on
    finetuned: dict = field(default_factory=dict)  # probe task -> its FinetunedHead: fine-tuned head effects


@dataclass(frozen=True)
class ScoringOutputs:
    """What a scoring run writes: the annotated VCF (bgzip, tabix index beside it), the table (TSV)
    and the summary (JSON)."""

    vcf: str | Path
    table: str | Path
    summary: str | Path

    @property
    def tbi(self) -> Path:
        return Path(str(self.vcf) + ".tbi")

    @property
    def paths(self) -> tuple:
        return self.vcf, self.table, self.summary, self.tbi


@dataclass(frozen=True)
class ShardParts:
    """What one shard of a sharded scoring run writes, for gather_shards: its annotated VCF
    lines (plain text), its table rows (no header) and its state (JSON: the header, counts,
    forward passes)."""

    vcf: str | Path
    table: str | Path
    state: str | Path

    @property
    def paths(self) -> tuple:
        return self.vcf, self.table, self.state


@dataclass(frozen=True)
class _LoadedModel:
    """The model a run scores with, its tokenizer and the device it runs on."""

    model: DNALM
    tokenizer: KmerTokenizer
    device: str


@dataclass(frozen=True)
class _Sinks:
    """Where scored records go: the bgzip VCF with its INFO fields, and the table."""

    vcf: pysam.BGZFile
    fields: list[InfoField]
    table: Any  # a csv.writer
    score_columns: list[str]  # the table's score columns, in order


@dataclass
class _Tally:
    """Records and alleles written so far, the alleles' statuses, and the records: how many were
    scored (an allele of them was), and by status why the others were not, those that count
    against max_unscored_fraction (not_scored) apart from those left out (left_out)."""

    records: int = 0
    alleles: int = 0
    statuses: Counter = field(default_factory=Counter)
    scored: Counter = field(default_factory=Counter)  # scored records ("records": n)
    not_scored: Counter = field(default_factory=Counter)
    left_out: Counter = field(default_factory=Counter)
    left_out_statuses: tuple = _LEFT_OUT
    scored_statuses: tuple = SCORED_STATUSES

    def state(self) -> dict:
        return {name: getattr(self, name) for name in ("records", "alleles", "statuses", "scored", "not_scored",
                                                       "left_out")}

    def add_state(self, state: dict) -> None:
        """Add a shard's counts (its `state()`, read back from JSON)."""
        self.records += state["records"]
        self.alleles += state["alleles"]
        for name in ("statuses", "scored", "not_scored", "left_out"):
            getattr(self, name).update(state[name])

    def count_record(self, alleles) -> None:
        statuses = [a.status for a in alleles]
        if any(s in self.scored_statuses for s in statuses):
            self.scored["records"] += 1
            return
        counted = [s for s in statuses if s not in self.left_out_statuses]
        if counted:
            self.not_scored[counted[0]] += 1
        else:
            self.left_out[statuses[0]] += 1


def table_row(a, score_columns: list[str] = _SCORE_COLUMNS) -> list:
    scores = a.scores
    return [a.record + 1, a.chrom, a.pos + 1, a.vcf_id, a.ref, a.alt, a.kind, a.variant_class, a.codon_position or "",
            a.status,
            scores.get("window", "")] + [f"{scores[c]:.6g}" if c in scores else "" for c in score_columns]


def warn_on_mismatches(statuses: Counter, path, callset_key: str = "variants.<callset>") -> None:
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
                    "%s.contig_aliases maps VCF names to reference names", path,
                    statuses["UNKNOWN_CONTIG"], callset_key)


def check_scored(tally: _Tally, callset: CallsetConfig, path, contig_notes: list[str],
                 callset_key: str = "variants.<callset>") -> None:
    """Fail when no record was scored, or when more than callset.max_unscored_fraction of the records
    (those left out by choice or by nature aside) were not; `contig_notes` say why VCF contigs
    have no reference contig."""
    scored = tally.scored["records"]
    not_scored = sum(tally.not_scored.values())
    considered = scored + not_scored
    if scored and not_scored <= callset.max_unscored_fraction * considered:
        return
    if not tally.records:
        raise GenofmInputError(f"{path}: the VCF has no records: nothing to score")
    counts = ", ".join(f"{s}: {n}" for s, n in tally.not_scored.most_common())
    what = f"{not_scored} of {considered} records were not scored ({counts})" if not_scored else "no record was scored"
    if tally.left_out:
        left_out = ", ".join(f"{s}: {n}" for s, n in tally.left_out.most_common())
        what += f"; {sum(tally.left_out.values())} more left out ({left_out})"
    fix = (f"Check that the VCF's contig names are the reference's (map them with {callset_key}.contig_aliases) "
           "and that the VCF is on the reference build of the genome")
    if scored:
        fix += (f"; if these records are expected, raise {callset_key}.max_unscored_fraction "
                f"(now {callset.max_unscored_fraction}; {not_scored / considered:.0%} were not scored)")
    else:
        what += "; a run that scores nothing fails"
    notes = [f"  {note}" for note in contig_notes[:5]]
    if len(contig_notes) > 5:
        notes.append(f"  ... and {len(contig_notes) - 5} more VCF contigs not in the reference")
    raise GenofmInputError("\n".join([f"{path}: {what}.", *notes, fix + "."]))


def score_vcf(inputs: ScoringInputs, outputs: ScoringOutputs | ShardParts, cfg: ScoringConfig,
              callset: CallsetConfig, meta: dict | None = None, device: str = "cpu",
              shard: tuple[int, int] | None = None) -> dict:
    """Score `inputs.vcf`; writes `outputs`: the VCF (bgzip) + its .tbi, the table (TSV), the
    summary (JSON). With `shard` = (i, n): only the i-th of n shards of the records, into
    ShardParts that `gather_shards` joins into the same files as one run."""
    model, tokenizer = load_model_and_tokenizer(inputs.model_dir, device)
    with readable_vcf(inputs.vcf) as readable:
        return _score_vcf(_LoadedModel(model, tokenizer, device), readable, inputs, outputs, cfg, callset, meta,
                          shard)


def shard_range(n_records: int, chunk_records: int, shard: int, shards: int, path, callset_key: str) -> range:
    """The records (0-based numbers) of shard `shard` of `shards`: consecutive whole chunks of
    chunk_records, so that every chunk, and so every forward batch, is the one-job run's."""
    chunks = -(-n_records // chunk_records)
    if not 0 <= shard < shards or shards > chunks:
        raise GenofmInputError(f"{path}: {shards} shards, but its {n_records} records make {chunks} chunk(s) of "
                               f"variant_scoring.chunk_records ({chunk_records}): set {callset_key}.shards to at "
                               f"most {chunks} (or lower chunk_records)")
    return range(shard * chunks // shards * chunk_records, min((shard + 1) * chunks // shards * chunk_records,
                                                               n_records))


def _score_vcf(loaded: _LoadedModel, readable, inputs: ScoringInputs, outputs, cfg: ScoringConfig,
               callset: CallsetConfig, meta: dict | None, shard: tuple[int, int] | None = None) -> dict:
    model, tokenizer, baseline, vcf_path = loaded.model, loaded.tokenizer, inputs.baseline, inputs.vcf
    scan = scan_vcf(readable, vcf_path)
    log.info("%s: %d records on %d contigs", vcf_path, scan.n_records, len(scan.contigs))
    wanted = range(scan.n_records) if shard is None else shard_range(scan.n_records, cfg.chunk_records, *shard,
                                                                     vcf_path, inputs.callset_key)
    if shard:
        log.info("shard %d of %d: records %d to %d", shard[0] + 1, shard[1], wanted.start + 1, wanted.stop)
    started = time.perf_counter()
    with pysam.FastaFile(str(inputs.fasta)) as fasta, atomic_paths(*outputs.paths) as tmp_paths:
        checker = AlleleChecker(fasta, callset.contig_aliases, callset.regions, callset.class_info_key,
                                inputs.callset_key, callset.codon_info_key)
        scorer = VariantScorer(model, tokenizer, fasta, cfg, loaded.device,
                               alignment=AlignedColumns(inputs.alignment) if inputs.alignment else None)
        window_bases = scorer.window_tokens * tokenizer.k
        conservation = inputs.conservation
        effects = None
        if inputs.heads or inputs.finetuned:
            effects = HeadEffects(inputs.heads, model, tokenizer, fasta, inputs.head_embedding, loaded.device,
                                  cfg.max_n_fraction, inputs.finetuned)
        head_names = effects.score_names if effects else []
        score_names = (scorer.score_names + (["markov"] if baseline else []) + (["phylop"] if conservation else [])
                       + head_names)
        fields = info_fields(score_names, baseline.order if baseline else 0,
                             effects.info_descriptions() if effects else None)

        def score_baseline(alleles):  # the scores beside the model's zero-shot ones
            if baseline:
                markov_scores(baseline, fasta, alleles)
            if conservation:
                conservation.score(alleles)
            if effects:
                effects.score(alleles)
        header_meta = {
            "genofm_model": {"Path": str(inputs.model_dir), "Objective": "clm" if model.cfg.causal else "mlm",
                             "Parameters": model.num_parameters(), "Tokenizer": tokenizer_label(tokenizer)},
            "genofm_scoring": {"Window": window_bases, "Reference": str(inputs.fasta),
                               **{k: v for k, v in asdict(cfg).items() if k != "window"}},
            **({"genofm_conservation": {"NeutralModel": str(conservation.model_path)}} if conservation else {}),
            **(meta or {}),
        }
        header = annotated_header(scan.header_text, fields, header_meta)
        left_out = _LEFT_OUT + (("NEAR_CONTIG_END",) if cfg.near_contig_end == "skip" else ())
        tally = _Tally(left_out_statuses=left_out,
                       scored_statuses=tuple(s for s in SCORED_STATUSES if s not in left_out))
        whole = shard is None
        tmp_vcf, tmp_table = tmp_paths[:2]
        with open_vcf(readable, vcf_path) as vcf, \
                (pysam.BGZFile(str(tmp_vcf), "wb") if whole else open(tmp_vcf, "wb")) as out, \
                open(tmp_table, "w", newline="") as table_file:
            table = csv.writer(table_file, delimiter="\t", lineterminator="\n")
            if whole:
                out.write(header.encode())
                table.writerow(TABLE_COLUMNS + head_names)
            sinks = _Sinks(out, fields, table, _SCORE_COLUMNS + head_names)
            chunk: list = []
            for number, record in iter_records(vcf, vcf_path):
                if number < wanted.start:
                    continue
                if number >= wanted.stop:
                    break
                chunk.append((number, record))
                if len(chunk) == cfg.chunk_records:
                    _flush(chunk, checker, scorer, score_baseline, sinks, tally)
                    chunk = []
                    rate = tally.alleles / (time.perf_counter() - started)
                    log.info("scored %d/%d records (%.0f variants/s, ETA %.0f s)", tally.records, len(wanted),
                             rate, (len(wanted) - tally.records) * tally.alleles / tally.records / rate)
            if chunk:
                _flush(chunk, checker, scorer, score_baseline, sinks, tally)
        if effects:
            scorer.passes["head"] += effects.passes
        if tally.records != len(wanted):
            raise GenofmInputError(f"{vcf_path}: read {tally.records} records but the first pass counted "
                                   f"{len(wanted)}")
        base = {"vcf": str(vcf_path), "records_in": scan.n_records, "scores": score_names,
                "table_columns": TABLE_COLUMNS + head_names,
                "markov_order": baseline.order if baseline else None, "window_bases": window_bases,
                "scoring": asdict(cfg), "callset": {k: v for k, v in asdict(callset).items() if k != "shards"},
                "model": str(inputs.model_dir)}
        unmatched = [checker.resolve.why_unmatched(c) for c in checker.resolve.unmatched]
        if whole:
            summary = _finish(tally, dict(scorer.passes), unmatched, base, callset, inputs.callset_key,
                              tmp_paths[2], tmp_paths[3], tmp_vcf)
        else:
            summary = {"shard": shard[0], "shards": shard[1], "header": header, "base": base,
                       "unmatched": unmatched, "passes": dict(scorer.passes), "tally": tally.state()}
            Path(tmp_paths[2]).write_text(json.dumps(summary) + "\n")
    log.info("%d records, %d alleles in %.1f s; statuses %s", tally.records, tally.alleles,
             time.perf_counter() - started, dict(tally.statuses))
    return summary


def _finish(tally: _Tally, passes: dict, unmatched: list[str], base: dict, callset: CallsetConfig,
            callset_key: str, tmp_summary, tmp_tbi, tmp_vcf) -> dict:
    """The checks on the whole call set's counts, the tabix index and the summary."""
    vcf_path = base["vcf"]
    warn_on_mismatches(tally.statuses, vcf_path, callset_key)
    log.info("%s: %d of %d records scored; not scored: %s; left out: %s", vcf_path, tally.scored["records"],
             tally.records, dict(tally.not_scored), dict(tally.left_out))
    check_scored(tally, callset, vcf_path, unmatched, callset_key)
    os.replace(write_bgzip_vcf_index(tmp_vcf), tmp_tbi)
    statuses = tally.statuses
    summary = {
        "vcf": vcf_path, "records_in": base["records_in"], "records_out": tally.records,
        "alleles": tally.alleles, "statuses": {s: statuses[s] for s in STATUSES if statuses[s]},
        "records_scored": tally.scored["records"],
        "records_not_scored": {s: tally.not_scored[s] for s in STATUSES if tally.not_scored[s]},
        "records_left_out": {s: tally.left_out[s] for s in STATUSES if tally.left_out[s]},
        # a next-token model's ALT windows count the part of a pass they run: rounded, so that
        # shards summed in another order give the same file
        "forward_passes": {name: round(count, 2) for name, count in sorted(passes.items())},
        **{k: base[k] for k in ("scores", "markov_order", "window_bases", "scoring", "callset", "model")},
        "provenance": provenance(),
    }
    Path(tmp_summary).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def gather_shards(parts: list[ShardParts], outputs: ScoringOutputs, callset: CallsetConfig,
                  callset_key: str = "variants.<callset>") -> dict:
    """Join the shards of one call set (in order) into the files one run writes: the same bytes."""
    states = [json.loads(Path(p.state).read_text()) for p in parts]
    if [s["shard"] for s in states] != list(range(len(parts))) or {s["shards"] for s in states} != {len(parts)}:
        raise GenofmInputError(f"shards {[p.state for p in parts]} are not the {len(parts)} shards of one run, "
                               "in order")
    tally, passes, unmatched = _Tally(), Counter(), []
    for state in states:
        tally.add_state(state["tally"])
        passes.update(state["passes"])
        unmatched += [note for note in state["unmatched"] if note not in unmatched]
    with atomic_paths(*outputs.paths) as (tmp_vcf, tmp_table, tmp_summary, tmp_tbi):
        with pysam.BGZFile(str(tmp_vcf), "wb") as out, open(tmp_table, "wb") as table:
            out.write(states[0]["header"].encode())
            table.write(("\t".join(states[0]["base"]["table_columns"]) + "\n").encode())
            for part in parts:
                copy_into(part.vcf, out)
                copy_into(part.table, table)
        summary = _finish(tally, passes, unmatched, states[0]["base"], callset, callset_key, tmp_summary, tmp_tbi,
                          tmp_vcf)
    return summary


def copy_into(path, out, block: int = 1 << 20) -> None:
    with open(path, "rb") as handle:
        for data in iter(lambda: handle.read(block), b""):
            out.write(data)


def markov_scores(baseline: MarkovModel, fasta: pysam.FastaFile, alleles) -> None:
    """The Markov baseline's log-likelihood difference of each scorable SNV, into a.scores."""
    snvs = [a for a in alleles if a.status in SCORED_STATUSES and a.kind == "snv"]
    k = baseline.order
    windows = [fasta.fetch(a.ref_chrom, a.pos - k, a.pos + k + 1) if a.pos >= k else "" for a in snvs]
    for a, score in zip(snvs, baseline.score_windows(windows, [a.alt for a in snvs])):
        if score == score:  # not NaN: a window cut by a contig end or holding an N has no score
            a.scores["markov"] = float(score)


def _flush(chunk, checker: AlleleChecker, scorer: VariantScorer, score_baseline, sinks: _Sinks,
           tally: _Tally) -> None:
    """Check, score and write one chunk of records; counts them into `tally`."""
    per_record = [checker.alleles(number, record) for number, record in chunk]
    alleles = [a for record_alleles in per_record for a in record_alleles]
    scorer.score(alleles)
    score_baseline(alleles)
    for (_, record), record_alleles in zip(chunk, per_record):
        sinks.vcf.write(annotated_line(record, record_alleles, sinks.fields).encode())
        for a in record_alleles:
            sinks.table.writerow(table_row(a, sinks.score_columns))
            tally.statuses[a.status] += 1
        tally.count_record(record_alleles)
    tally.records += len(chunk)
    tally.alleles += len(alleles)
