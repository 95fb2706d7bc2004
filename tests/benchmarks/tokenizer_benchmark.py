"""Tokenizer throughput: genofm's vectorised k-mer tokenizer against Hugging Face's
EsmTokenizer loaded from genofm's vocab.txt, on the same sequences in one run.

    python tests/benchmarks/tokenizer_benchmark.py [--fasta 20.fa.gz] [--n 400] [--length 2000]
        [--markdown docs/benchmarks/tokenizer.md]

Prints Mb/s of each and the ratio (target: genofm >= 100x HF), and checks the ids are identical.
Without --fasta it uses real human chr20 from the test data (tests/fetch_test_data.sh), or
the demo genome when that is missing. With --markdown it also writes those figures as a markdown
table (with the date, CPU, cores and torch version of the run) to that file, which the docs'
benchmark page includes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.tokenizer import KmerTokenizer  # noqa: E402
from markdown_table import write_markdown  # noqa: E402  (beside this script)


def sample_sequences(fasta: Path, n: int, length: int, seed: int = 0) -> list[str]:
    """n random windows (upper-cased, as HF's vocabulary is upper case) of real sequence."""
    rng = np.random.default_rng(seed)
    with pysam.FastaFile(str(fasta)) as fa:
        contigs = [(c, L) for c, L in zip(fa.references, fa.lengths) if L > length]
        out = []
        while len(out) < n:
            chrom, clen = contigs[rng.integers(len(contigs))]
            start = int(rng.integers(0, clen - length))
            seq = fa.fetch(chrom, start, start + length).upper()
            if seq.count("N") < length // 2:
                out.append(seq)
    return out


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fasta", type=Path, default=None)
    parser.add_argument("--n", type=int, default=400, help="number of sequences")
    parser.add_argument("--length", type=int, default=2000, help="bases per sequence")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the figures as a markdown table to this file (for the docs)")
    args = parser.parse_args()
    fasta = args.fasta
    if fasta is None:
        fasta = REPO / ".cache/testdata/vt/20.fa.gz"
        if not fasta.exists():
            from genofm.reference import prepare_reference

            fasta = Path(tempfile.mkdtemp()) / "demo.fa.gz"
            prepare_reference(str(REPO / "config/demo/genome.fa.gz"), fasta)
    from transformers import AutoTokenizer

    sequences = sample_sequences(fasta, args.n, args.length)
    megabases = sum(map(len, sequences)) / 1e6
    tokenizer = KmerTokenizer()
    vocab_dir = Path(tempfile.mkdtemp())
    tokenizer.save(vocab_dir)
    hf = AutoTokenizer.from_pretrained(vocab_dir, local_files_only=True)

    # genofm as the tokenize rule runs it (a batch of regions per call), and one call per
    # sequence; HF as its users run it, a batch call (it loops over sequences inside).
    t_batch, (ids, offsets) = best_of(5, lambda: tokenizer.encode_batch(sequences))
    t_single, ours = best_of(5, lambda: [tokenizer.encode(s) for s in sequences])
    t_hf, theirs = best_of(2, lambda: hf(sequences)["input_ids"])
    identical = all(a.tolist() == b == ids[offsets[i]:offsets[i + 1]].tolist()
                    for i, (a, b) in enumerate(zip(ours, theirs)))
    print(f"sequences: {len(sequences)} x {args.length} bp from {fasta} ({megabases:.2f} Mb)")
    print(f"genofm encode_batch    : {megabases / t_batch:10.2f} Mb/s")
    print(f"genofm encode (1 by 1) : {megabases / t_single:10.2f} Mb/s")
    print(f"HF EsmTokenizer        : {megabases / t_hf:10.4f} Mb/s")
    print(f"ratio batch / HF       : {t_hf / t_batch:10.1f}x  (target >= 100x)")
    print(f"ratio 1 by 1 / HF      : {t_hf / t_single:10.1f}x")
    print(f"ids identical          : {identical}")
    if not identical:
        sys.exit(1)
    if args.markdown:
        if fasta.resolve().is_relative_to(REPO):
            shown = f"`{fasta.resolve().relative_to(REPO)}`"
        else:
            shown = f"`{fasta.name}`" if args.fasta else "the demo genome"
        write_markdown(
            args.markdown,
            f"`tests/benchmarks/tokenizer_benchmark.py`: {len(sequences)} sequences of {args.length} bp from "
            f"{shown} ({megabases:.2f} Mb), best of 5 passes (HF: of 2), ids checked identical.",
            ["tokenizer", "throughput", "ratio to HF"],
            [["genofm `encode_batch` (as the tokenize rule runs it)", f"{megabases / t_batch:.2f} Mb/s",
              f"**{t_hf / t_batch:.1f}×** (target ≥ 100×)"],
             ["genofm `encode`, one call per sequence", f"{megabases / t_single:.2f} Mb/s", f"{t_hf / t_single:.1f}×"],
             ["HF `EsmTokenizer` (from genofm's vocab.txt)", f"{megabases / t_hf:.4f} Mb/s", "1×"]])


if __name__ == "__main__":
    main()
