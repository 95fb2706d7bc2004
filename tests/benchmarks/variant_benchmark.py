"""Variant-scoring throughput: shared masked passes against a naive one-pass-per-variant scorer,
and peak memory while streaming a VCF of a million records.

    python tests/benchmarks/variant_benchmark.py [--layers 4] [--d-model 128] [--heads 4]
        [--d-ff 512] [--max-len 128] [--k 6] [--region-bp 600] [--sparse 150]
        [--stream-records 1000000] [--threads 2] [--markdown docs/benchmarks/variant.md]

Model: the demo model's shape (random weights: speed does not depend on them) on a random
genome. Two sets are scored by the masked-marginal LLR, both strands averaged:

- saturation: all 3 alternatives at every position of a --region-bp region;
- sparse: one SNV per window (--sparse of them, a window apart).

Each set is scored by genofm's scorer, where variants in the same token of the same window
share one forward pass, and by the naive scorer (the same code with sharing off: one pass per
variant and strand), in the same run; the two must give the same LLRs (max |difference| is
printed). Prints variants/s and forward passes per variant of each (target on the saturation
set: <= 1/10 pass per variant and strand).

Streaming: a VCF of --stream-records SNVs (one per position of a random 1 Mb contig, plus a
second contig) goes through `score_vcf` (LLR; a 1-layer, 32-wide model with a 32-token
context, so that the run measures streaming rather than the model) in a child process; its
peak RSS is printed next to that of a child that only loads the same libraries and model
(target < 2 GB).

With --markdown, the figures are also written as a markdown table (with the date, CPU, cores and
torch version of the run) to that file, which the docs' benchmark page includes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.model import DNALM, ModelConfig  # noqa: E402
from genofm.tokenizer import KmerTokenizer  # noqa: E402
from genofm.variant_report import saturation_alleles  # noqa: E402
from genofm.variant_scoring import ScoringConfig, VariantScorer  # noqa: E402
from genofm.vcf import Allele  # noqa: E402
from same_size import add_model_arguments  # noqa: E402  (beside this script)
from markdown_table import write_markdown  # noqa: E402  (beside this script)


def write_genome(path: Path, contigs: dict[str, int], seed: int = 0) -> dict[str, str]:
    import pysam

    rng = np.random.default_rng(seed)
    seqs = {name: "".join(rng.choice(list("ACGT"), n)) for name, n in contigs.items()}
    with open(path, "w") as handle:
        for name, seq in seqs.items():
            handle.write(f">{name}\n")
            for i in range(0, len(seq), 80):
                handle.write(seq[i:i + 80] + "\n")
    pysam.faidx(str(path))
    return seqs


def build_model(args, layers=None) -> DNALM:
    torch.manual_seed(0)
    tok = KmerTokenizer(k=args.k)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=args.max_len, n_layers=layers or args.layers,
                      d_model=args.d_model, n_heads=args.heads, d_ff=args.d_ff,
                      extra={"tokenizer": {"k": args.k, "overlapping": False}})
    return DNALM(cfg).eval()


def sparse_alleles(seqs: dict[str, str], n: int, spacing: int) -> list[Allele]:
    seq = seqs["chr1"]
    out = []
    for i in range(n):
        pos = spacing // 2 + i * spacing
        alt = "ACGT"[("ACGT".index(seq[pos]) + 1 + i % 3) % 4]
        out.append(Allele(record=i, chrom="chr1", pos=pos, vcf_id=".", ref=seq[pos], alt=alt, ref_chrom="chr1"))
    return out


def time_scorer(model, tok, fasta, make_alleles, share: bool) -> tuple[list[Allele], float, int]:
    scorer = VariantScorer(model, tok, fasta, ScoringConfig(embedding=False, rc_average=True), share_passes=share)
    alleles = make_alleles()
    started = time.perf_counter()
    scorer.score(alleles)
    return alleles, time.perf_counter() - started, scorer.passes["llr"]


def compare(name, model, tok, fasta, make_alleles) -> dict:
    warm = make_alleles()[:30]
    VariantScorer(model, tok, fasta, ScoringConfig(embedding=False)).score(warm)  # warm up
    shared, t_shared, p_shared = time_scorer(model, tok, fasta, make_alleles, True)
    naive, t_naive, p_naive = time_scorer(model, tok, fasta, make_alleles, False)
    n = len(shared)
    diff = max(abs(a.scores["llr"] - b.scores["llr"]) for a, b in zip(shared, naive))
    print(f"{name}: {n} variants")
    print(f"  genofm (shared passes): {n / t_shared:9.1f} variants/s  {p_shared / n:.3f} passes/variant "
          f"({p_shared / n / 2:.3f} per strand)  {t_shared:.1f} s")
    print(f"  naive (pass/variant):   {n / t_naive:9.1f} variants/s  {p_naive / n:.3f} passes/variant "
          f"({p_naive / n / 2:.3f} per strand)  {t_naive:.1f} s")
    print(f"  speed-up {t_naive / t_shared:.1f}x; max |LLR difference| {diff:.2e}")
    assert diff < 1e-3, "shared and naive LLRs differ"
    return {"variants": n, "passes_per_variant": p_shared / n, "speedup": t_naive / t_shared,
            "rows": [[name, "genofm (shared passes)", f"{n / t_shared:.1f}", f"{p_shared / n:.3f}",
                      f"{p_shared / n / 2:.3f}", f"{t_shared:.1f} s"],
                     ["", "naive (one pass per variant)", f"{n / t_naive:.1f}", f"{p_naive / n:.3f}",
                      f"{p_naive / n / 2:.3f}", f"{t_naive:.1f} s"],
                     ["", f"**speed-up {t_naive / t_shared:.1f}×**, max \\|LLR difference\\| {diff:.1e}", "", "", "",
                      ""]]}


def write_stream_vcf(path: Path, seqs: dict[str, str], n_records: int) -> None:
    rng = np.random.default_rng(1)
    from genofm.vcf_writer import record_line, vcf_header

    with open(path, "w") as out:
        out.write(vcf_header([], [(name, len(seq)) for name, seq in seqs.items()], []))
        written = 0
        for name, seq in seqs.items():
            positions = np.arange(len(seq))[: n_records - written]
            shift = rng.integers(1, 4, positions.size)
            lines = [record_line(name, p + 1, ".", seq[p], "ACGT"[("ACGT".index(seq[p]) + s) % 4], {})
                     for p, s in zip(positions.tolist(), shift.tolist())]
            out.writelines(lines)
            written += positions.size
            if written >= n_records:
                break


def stream_child(model_dir, fasta, vcf, out_dir, only_load, threads):
    torch.set_num_threads(threads)
    from genofm.loading import load_model_and_tokenizer
    from genofm.variants import CallsetConfig, ScoringInputs, ScoringOutputs, score_vcf

    out = Path(out_dir)
    records = [0, 0]
    if only_load:
        load_model_and_tokenizer(model_dir)
    else:
        summary = score_vcf(ScoringInputs(model_dir, fasta, vcf),
                            ScoringOutputs(out / "out.vcf.gz", out / "out.tsv", out / "summary.json"),
                            ScoringConfig(embedding=False, batch_size=256, chunk_records=4000), CallsetConfig())
        records = [summary["records_in"], summary["records_out"]]
    # VmHWM, not getrusage's ru_maxrss: that one survives fork + exec, so a child would report
    # its parent's peak
    status = Path("/proc/self/status").read_text()
    peak_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    (out / "child.json").write_text(json.dumps({"records": records, "peak_mb": peak_mb}))


def run_child(*args) -> dict:
    """Run stream_child(*args) in a fresh process; its records and peak RSS (MB)."""
    child = multiprocessing.get_context("spawn").Process(target=stream_child, args=args)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the streaming child failed with exit code {child.exitcode}")
    return json.loads((Path(args[3]) / "child.json").read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, d_model=128, d_ff=512)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--region-bp", type=int, default=600)
    parser.add_argument("--sparse", type=int, default=150)
    parser.add_argument("--stream-records", type=int, default=1_000_000)
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the figures as a markdown table to this file (for the docs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import pysam

    tok = KmerTokenizer(k=args.k)
    model = build_model(args)
    window = (args.max_len - 1) * args.k
    print(f"model: {args.layers} layers, d_model {args.d_model}, context {args.max_len} tokens of {args.k} bases "
          f"(window {window} bp), {model.num_parameters() / 1e6:.2f}M parameters, {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seqs = write_genome(tmp / "genome.fa", {"chr1": (args.sparse + 2) * window})
        with pysam.FastaFile(str(tmp / "genome.fa")) as fasta:
            start = len(seqs["chr1"]) // 2
            saturation = compare("saturation mutagenesis", model, tok, fasta,
                                 lambda: saturation_alleles(fasta, "chr1", start, start + args.region_bp))
            sparse = compare("sparse (one SNV per window)", model, tok, fasta,
                             lambda: sparse_alleles(seqs, args.sparse, window))
        target = "met" if saturation["passes_per_variant"] / 2 <= 0.1 else "NOT met"
        print(f"saturation: {saturation['passes_per_variant'] / 2:.3f} passes per variant and strand "
              f"(target <= 0.1: {target})")
        footer = (f"Saturation: **{saturation['passes_per_variant'] / 2:.3f} passes per variant and strand** "
                  f"(target ≤ 0.1: {target}).")

        if args.stream_records:
            contig = min(1_000_000, args.stream_records)
            stream_seqs = write_genome(tmp / "stream.fa", {"chr1": contig, "chr2": max(1000, args.stream_records - contig)},
                                       seed=2)
            vcf = tmp / "stream.vcf"
            write_stream_vcf(vcf, stream_seqs, args.stream_records)
            small = argparse.Namespace(**{**vars(args), "max_len": 32, "d_model": 32, "heads": 2, "d_ff": 64})
            build_model(small, layers=1).save_pretrained(tmp / "stream_model")
            child_args = [str(tmp / "stream_model"), str(tmp / "stream.fa"), str(vcf), str(tmp)]
            base = run_child(*child_args, True, args.threads)["peak_mb"]
            started = time.perf_counter()
            streamed = run_child(*child_args, False, args.threads)
            seconds = time.perf_counter() - started
            (records_in, records_out), peak = streamed["records"], streamed["peak_mb"]
            print(f"streaming {records_in:,} records (tiny model, LLR, both strands): {seconds:.0f} s, "
                  f"{records_in / seconds:,.0f} records/s, records out {records_out:,}")
            print(f"  peak RSS {peak:,.1f} MB (libraries + model alone: {base:,.1f} MB); "
                  f"target < 2048 MB: {'met' if peak < 2048 else 'NOT met'}")
            assert records_in == records_out == args.stream_records
            footer += (f" Streaming {records_in:,} records (tiny model, LLR, both strands): {seconds:.0f} s, "
                       f"{records_in / seconds:,.0f} records/s, every record out; peak RSS {peak:,.0f} MB "
                       f"(libraries + model alone: {base:,.0f} MB; target < 2048 MB: "
                       f"{'met' if peak < 2048 else 'NOT met'}).")
        if args.markdown:
            write_markdown(
                args.markdown,
                f"`tests/benchmarks/variant_benchmark.py`: masked-marginal LLR, both strands averaged, "
                f"{args.layers} layers, d_model {args.d_model}, context {args.max_len} tokens of {args.k} bases, "
                f"random weights, {args.threads} thread(s).",
                ["variant set", "scorer", "variants/s", "passes per variant", "per strand", "time"],
                saturation["rows"] + sparse["rows"], footer)


if __name__ == "__main__":
    main()
