"""MAF to arrays (genofm.alignment.build_arrays) on the real Zymoseptoria alignment: time and
peak memory at two input sizes, to show that memory does not grow with the alignment.

    python tests/benchmarks/alignment_benchmark.py [--markdown docs/benchmarks/alignment.md]

Needs `bash tests/fetch_test_data.sh zymo`. Each size runs in a fresh process (so its peak RSS
is its own): the first half of the MAF's blocks, then all of them, with the reference check
against the FASTA on. Prints wall and CPU time, blocks and reference bases per second, and the
peak RSS of each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from markdown_table import write_markdown  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ZYMO = REPO / ".cache/testdata/zymo"
SPECIES = ["Ztritici_A26b", "Ztritici_A48b", "Zpseudotritici_221", "Zpseudotritici_3111", "Zpseudotritici_431",
           "Zpseudotritici_53", "Zpseudotritici_591", "Zardabiliae_111", "Zardabiliae_112", "Zardabiliae_3131",
           "Zardabiliae_332", "Spasserinii_P63"]

ONE_RUN = """
import json, resource, sys, time
import pysam
from genofm.alignment import build_arrays
maf, out, species = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
wall, cpu = time.perf_counter(), time.process_time()
with pysam.FastaFile(sys.argv[4]) as fasta:
    summary = build_arrays(maf, "Ztritici_IPO323", species, out, fasta=fasta,
                           contigs=dict(zip(fasta.references, fasta.lengths)))
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "blocks": summary.blocks, "bases": summary.reference_bases}))
"""


def first_blocks(maf: Path, out: Path, fraction: float) -> None:
    """The header and the first `fraction` of the blocks of `maf`, gzip."""
    with gzip.open(maf, "rb") as handle:
        total = sum(1 for line in handle if line.startswith(b"a"))
    keep, seen = int(total * fraction), 0
    with gzip.open(maf, "rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
        for line in src:
            if line.startswith(b"a"):
                seen += 1
                if seen > keep:
                    break
            dst.write(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    maf, fasta = ZYMO / "tba_refIPO323.maf.gz", ZYMO / "IPO323.fa.gz"
    if not fasta.exists():
        raise SystemExit(f"{fasta} is missing: run `bash tests/fetch_test_data.sh zymo` first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "half.maf.gz"
        first_blocks(maf, half, 0.5)
        for label, path in (("half the blocks", half), ("all blocks", maf)):
            out = Path(tmp) / label.replace(" ", "_")
            proc = subprocess.run([sys.executable, "-c", ONE_RUN, str(path), str(out), json.dumps(SPECIES),
                                   str(fasta)], capture_output=True, text=True, env={**os.environ,
                                                                                     "PYTHONPATH": str(REPO)})
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            disk = sum(p.stat().st_blocks * 512 for p in out.glob("*.npy")) / 1e6
            rows.append({"label": label, **run, "disk_mb": disk})
            print(f"{label}: {run['blocks']} blocks, {run['bases']:,} reference bases in {run['wall']:.1f} s wall "
                  f"({run['cpu']:.1f} s CPU; {run['bases'] / run['wall'] / 1e6:.1f} Mb/s); peak RSS "
                  f"{run['rss_mb']:.0f} MB; arrays {disk:.0f} MB on disk", flush=True)
    print(f"peak RSS, all blocks / half the blocks: {rows[1]['rss_mb'] / rows[0]['rss_mb']:.2f} "
          f"(bounded: stays near 1 as the alignment doubles)")
    if args.markdown:
        write_markdown(args.markdown,
                       "The Zymoseptoria alignment of Debian's maffilter-examples (13 genomes, reference Z. tritici "
                       "IPO323, 39.7 Mb on 21 chromosomes, 60 MB gzip) into arrays of the reference and its 12 other "
                       "genomes, the reference rows checked against the FASTA; one process per size.",
                       ["input", "blocks", "reference bases", "wall s", "CPU s", "Mb per s", "peak RSS MB",
                        "arrays on disk MB"],
                       [[r["label"], str(r["blocks"]), f"{r['bases']:,}", f"{r['wall']:.1f}", f"{r['cpu']:.1f}",
                         f"{r['bases'] / r['wall'] / 1e6:.1f}", f"{r['rss_mb']:.0f}", f"{r['disk_mb']:.0f}"]
                        for r in rows],
                       "Peak RSS is the whole process's (Python, numpy and pysam included). The arrays are sparse "
                       "files: on disk, contigs' uncovered stretches take no space.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
