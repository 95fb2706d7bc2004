"""genofm's VCF writer (genofm.vcf_writer: text) against pysam's VariantHeader/VariantRecord API.

Two questions, each for a new VCF (the demo's variants, labelled SNVs) and for the scorer's
annotated copy of an input VCF (input records plus INFO fields):
  1. byte-identical? The demo VCF (config/demo/variants.vcf) written both ways is compared
     with the committed file, and its annotated copy written both ways with each other.
  2. speed: both ways on the same synthetic records (default 200k), in one process.
pysam's API would be adopted only if it were byte-identical and not slower.

    .venv/bin/python tests/benchmarks/vcf_writer_benchmark.py [--records 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.vcf import info_fields  # noqa: E402
from genofm.vcf_writer import annotated_header, annotated_line, vcf_text  # noqa: E402

DEMO_VCF = REPO / "config" / "demo" / "variants.vcf"
INFO = [("CLASS", "1", "String", "True consequence: synonymous, missense, stop_gained, frameshift, "
         "motif_disrupting or neutral (intergenic, outside repeats and promoters)"),
        ("GENE", "1", "String", "Gene whose CDS or promoter the variant hits")]
META = [("source", "genofm.demo seed=7"), ("reference", "genome.fa.gz")]
SCORES = ["llr", "emb_cosine"]


@dataclass
class FakeAllele:  # what annotated_line reads of vcf.Allele
    status: str
    scores: dict = field(default_factory=dict)


# --- new VCF ----------------------------------------------------------------------------------

def new_with_text(path: Path, contigs, records) -> None:
    path.write_text(vcf_text(META, contigs, INFO, records))


def new_with_pysam(path: Path, contigs, records) -> None:
    header = pysam.VariantHeader()
    for key, value in META:
        header.add_meta(key, value)
    for name, length in contigs:
        header.contigs.add(name, length=length)
    for key, number, type_, description in INFO:
        header.info.add(key, number, type_, description)
    with pysam.VariantFile(str(path), "w", header=header) as out:
        for chrom, pos, vcf_id, ref, alt, info in records:
            out.write(out.new_record(contig=chrom, start=pos - 1, id=vcf_id, alleles=(ref, alt), filter="PASS",
                                     info={k: v for k, v in info.items() if v}))


# --- annotated copy ---------------------------------------------------------------------------

def alleles_of(record, number: int) -> list[FakeAllele]:
    """A status and deterministic scores per ALT, as the scorer would give them (float64
    scores, one in 50 alleles unscored)."""
    rng = np.random.default_rng(number)
    out = []
    for _ in record.alts or ():
        scored = rng.random() >= 0.02
        out.append(FakeAllele("OK" if scored else "N_IN_WINDOW",
                              {"llr": float(rng.normal(0, 2)), "emb_cosine": float(rng.exponential(1e-3))}
                              if scored else {}))
    return out


def annotated_with_text(src: Path, path: Path) -> None:
    fields = info_fields(SCORES)
    with pysam.VariantFile(str(src)) as vcf, open(path, "w") as out:
        out.write(annotated_header(str(vcf.header), fields, {"genofm_model": {"Path": "m", "Parameters": 1}}))
        for number, record in enumerate(vcf):
            out.write(annotated_line(record, alleles_of(record, number), fields))


def annotated_with_pysam(src: Path, path: Path) -> None:
    fields = info_fields(SCORES)
    with pysam.VariantFile(str(src)) as vcf:
        header = vcf.header.copy()
        for f in fields:
            header.info.add(f.key, "A", f.type, f.description)
        header.add_line('##genofm_model=<Path="m",Parameters="1">')
        with pysam.VariantFile(str(path), "w", header=header) as out:
            for number, record in enumerate(vcf):
                record.translate(header)
                alleles = alleles_of(record, number)
                for f in fields:
                    record.info[f.key] = [a.status if not f.score else a.scores.get(f.score) for a in alleles]
                out.write(record)


# --- inputs -------------------------------------------------------------------------------------

def demo_records() -> tuple[list, list]:
    with pysam.VariantFile(str(DEMO_VCF)) as vcf:
        contigs = [(name, vcf.header.contigs[name].length) for name in vcf.header.contigs]
        records = [(r.chrom, r.pos, r.id, r.ref, r.alts[0], {"CLASS": r.info["CLASS"], "GENE": r.info.get("GENE", "")})
                   for r in vcf]
    return contigs, records


def synthetic_records(n: int) -> tuple[list, list]:
    rng = np.random.default_rng(0)
    contigs = [("chr1", 250_000_000), ("chr2", 240_000_000)]
    chroms = np.where(np.arange(n) < n // 2, "chr1", "chr2")
    positions = np.concatenate([np.sort(rng.integers(1, 240_000_000, n // 2)),
                                np.sort(rng.integers(1, 240_000_000, n - n // 2))])
    refs, alts = rng.integers(0, 4, n), rng.integers(1, 4, n)
    classes = np.array(["synonymous", "missense", "stop_gained", "neutral"])[rng.integers(0, 4, n)]
    records = [(str(c), int(p), f"var{i + 1}", "ACGT"[r], "ACGT"[(r + a) % 4],
                {"CLASS": str(k), "GENE": f"G{i % 5000:04d}" if k != "neutral" else ""})
               for i, (c, p, r, a, k) in enumerate(zip(chroms, positions, refs, alts, classes))]
    return contigs, records


def timed_pair(text_way, pysam_way, repeats: int = 5) -> tuple[float, float]:
    """Best of `repeats` of each (given as (function, *args)), run in turns so that a busy
    machine slows both alike."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, (fn, *args) in enumerate((text_way, pysam_way)):
            t0 = time.perf_counter()
            fn(*args)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0], best[1]


def first_difference(a: bytes, b: bytes) -> str:
    la, lb = a.decode().splitlines(), b.decode().splitlines()
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            return f"line {i}: {x[:100]!r} vs {y[:100]!r}"
    return f"{len(la)} vs {len(lb)} lines"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    print(f"pysam {pysam.__version__}, {args.records:,} records")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        committed = DEMO_VCF.read_bytes()
        contigs, records = demo_records()
        new_with_text(tmp / "text.vcf", contigs, records)
        new_with_pysam(tmp / "pysam.vcf", contigs, records)
        text_ok = (tmp / "text.vcf").read_bytes() == committed
        pysam_new = (tmp / "pysam.vcf").read_bytes()
        pysam_ok = pysam_new == committed
        print(f"new VCF (demo)   : text writer byte-identical to {DEMO_VCF.relative_to(REPO)}: {text_ok}; "
              f"pysam API: {pysam_ok}"
              + ("" if pysam_ok else f" (first difference {first_difference(committed, pysam_new)})"))
        annotated_with_text(DEMO_VCF, tmp / "text_annotated.vcf")
        annotated_with_pysam(DEMO_VCF, tmp / "pysam_annotated.vcf")
        a, b = (tmp / "text_annotated.vcf").read_bytes(), (tmp / "pysam_annotated.vcf").read_bytes()
        annotated_ok = a == b
        print(f"annotated (demo) : pysam API byte-identical to the text writer: {annotated_ok}"
              + ("" if annotated_ok else f" (first difference {first_difference(a, b)})"))

        contigs, records = synthetic_records(args.records)
        t_text, t_pysam = timed_pair((new_with_text, tmp / "big_text.vcf", contigs, records),
                                     (new_with_pysam, tmp / "big_pysam.vcf", contigs, records))
        print(f"new VCF          : text {t_text:.2f} s, pysam API {t_pysam:.2f} s: "
              f"pysam/text = {t_pysam / t_text:.1f}x")
        # the annotated copy reads the big VCF back: both ways pay the same pysam parsing
        big = tmp / "big_text.vcf"
        t_text_a, t_pysam_a = timed_pair((annotated_with_text, big, tmp / "big_text_annotated.vcf"),
                                         (annotated_with_pysam, big, tmp / "big_pysam_annotated.vcf"))
        print(f"annotated copy   : text {t_text_a:.2f} s, pysam API {t_pysam_a:.2f} s: "
              f"pysam/text = {t_pysam_a / t_text_a:.1f}x")
    for case, identical, slower in (("new VCF", pysam_ok, t_pysam > t_text),
                                    ("annotated copy", annotated_ok, t_pysam_a > t_text_a)):
        faults = ([] if identical else ["not byte-identical"]) + (["slower"] if slower else [])
        print(f"verdict, {case}: " + (f"pysam's API is {' and '.join(faults)}: keep the text writer (genofm.vcf_writer)"
                                      if faults else "pysam's API is byte-identical and not slower: adopt it"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
