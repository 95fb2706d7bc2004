"""Human-chromosome scale: the real GRCh37 chr20 (63 Mb, Debian's vt-examples) through the
workflow, every stage measured, and what it projects to for a whole genome and large call sets.

    python tests/benchmarks/human_scale.py [--full] [--cores 2] [--workdir DIR]
        [--markdown docs/benchmarks/human_scale.md]

The workflow runs on chr20 (fetched by tests/fetch_test_data.sh, read through a file:// URL):
download (re-compressed to bgzip and validated), tiling (6 kb pretraining tiles with 1 Mb
blocks held out for validation; 600 bp embedding tiles every 6 kb), tokenization (6-mers),
pretraining for a fixed number of steps, embedding of the tiles, and scoring of VCFs of real
chr20 positions (SNVs with 1 in 10 short indels, REF alleles read from the reference) in two
shards. Reduced (the default, what CI runs): a 2-layer model, 3 steps, 10,000 records.
--full: a Nucleotide-Transformer-v2-50M-shaped model (12 layers x 512, 16 heads, SwiGLU, 2048
tokens), 20 steps, 100,000 records; by hand, it takes hours on a CPU.

Each stage's wall time, CPU time and peak RSS come from Snakemake's benchmark files of its jobs
(the shards of a stage summed for time, their maximum for memory); for sharded stages also the
wall time with a worker per shard (the longest shard plus the join) and the join's own time. Memory must stay bounded as
the input grows: embedding and scoring run at two sizes (half and all of the tiles and records)
and their peak RSS is printed side by side. The projection separates what grows with the genome
(download, tiling, tokenization: x 3.1 Gb / 63 Mb for GRCh38), with the records (scoring: to 5
million and 500 million records) and what does not (pretraining: a fixed number of steps), in
job hours (the jobs' summed wall time; each of these jobs runs one thread), which shards
spread over workers. CPU times are printed too but are what Snakemake's benchmark sampled.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from markdown_table import write_markdown  # noqa: E402  (beside this script)

sys.path.insert(0, str(REPO / "tests"))
from conftest import copy_workflow  # noqa: E402  (tests/)

CHR20 = REPO / ".cache/testdata/vt/20.fa.gz"
GRCH38_BASES = 3.1e9
SHAPES = {  # reduced (CI) and full: the model, training steps, records and tiles
    "reduced": {"architecture": {"max_len": 256, "n_layers": 2, "d_model": 128, "n_heads": 4, "d_ff": 512},
                "steps": 3, "batch": 8, "records": 10_000},
    "full": {"architecture": {"max_len": 2048, "n_layers": 12, "d_model": 512, "n_heads": 16, "d_ff": 2048,
                              "ffn": "swiglu"}, "steps": 20, "batch": 8, "records": 100_000},
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def write_vcf(path: Path, fasta: Path, records: int, seed: int = 0) -> None:
    """`records` variants at random non-N positions of chr20, sorted, REF from the reference:
    SNVs, and one in ten a 1-3 base deletion or insertion."""
    rng = np.random.default_rng(seed)
    with pysam.FastaFile(str(fasta)) as ref:
        seq = ref.fetch("20").upper()
    codes = np.frombuffer(seq.encode(), dtype=np.uint8)
    acgt = np.flatnonzero(np.isin(codes, np.frombuffer(b"ACGT", dtype=np.uint8)))
    positions = np.sort(rng.choice(acgt[(acgt > 10) & (acgt < len(seq) - 10)], records, replace=False))
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID=20,length={len(seq)}>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for i, pos in enumerate(positions.tolist()):
        ref = seq[pos]
        kind = rng.random()
        if kind < 0.05 and "N" not in seq[pos:pos + 4]:
            size = int(rng.integers(1, 4))
            ref_allele, alt = seq[pos:pos + 1 + size], ref
        elif kind < 0.1:
            ref_allele, alt = ref, ref + "".join(rng.choice(list("ACGT"), int(rng.integers(1, 4))))
        else:
            ref_allele, alt = ref, "ACGT".replace(ref, "")[int(rng.integers(3))]
        lines.append(f"20\t{pos + 1}\tv{i}\t{ref_allele}\t{alt}\t.\tPASS\t.")
    path.write_text("\n".join(lines) + "\n")


def configuration(workdir: Path, shape: dict) -> dict:
    half = shape["records"] // 2
    write_vcf(workdir / "calls.vcf", CHR20, shape["records"])
    write_vcf(workdir / "calls_half.vcf", CHR20, half, seed=1)
    tiles = {"type": "tiling", "window": 6000, "stride": 6000, "max_n_fraction": 0.05, "block": 1_000_000,
             "held_out_every": 10}
    scoring = {"window": 384, "chunk_records": 1000, "resources": {"threads": 1, "mem_mb": 4000, "runtime": 600}}
    return {
        "seed": 42,
        "genomes": {"chr20": {"source": CHR20.resolve().as_uri(), "checksum": sha256(CHR20), "region_sets": {
            "pretrain_train": {**tiles, "blocks": "train"},
            "pretrain_valid": {**tiles, "blocks": "held_out"},
            "embed_tiles": {"type": "tiling", "window": 600, "stride": 6000, "max_n_fraction": 0.05},
            "embed_tiles_half": {"type": "tiling", "window": 600, "stride": 12000, "max_n_fraction": 0.05},
        }}},
        "models": {"scale": {
            "genomes": {"chr20": {"train_sets": ["pretrain_train"], "valid_sets": ["pretrain_valid"]}},
            "architecture": {**shape["architecture"], "position": "rope"},
            "training": {"objective": "mlm", "max_steps": shape["steps"], "batch_size": shape["batch"],
                         "micro_batch_size": shape["batch"], "warmup_steps": 1, "eval_every": shape["steps"],
                         "eval_windows": 8, "checkpoint_every": shape["steps"], "metrics_every": 1, "log_every": 1},
            "resources": {"threads": 2, "mem_mb": 8000, "runtime": 600}}},
        "embeddings": {"layer": -1, "pooling": "mean", "shards": 2, "chunk_regions": 1024,
                       "resources": {"threads": 1, "mem_mb": 4000, "runtime": 600}},
        "probes": {},
        "variant_scoring": {**scoring, "markov_order": 0},
        "variants": {name: {"vcf": str(workdir / f"{name}.vcf"), "genome": "chr20", "model": "scale", "shards": 2}
                     for name in ("calls", "calls_half")},
    }


STAGES = [  # (stage, benchmark file patterns, what it grows with)
    ("download", ["download_reference_chr20*.tsv", "download_reference.tsv"], "genome"),
    ("tiling", ["extract_regions_pretrain_*.tsv"], "genome"),
    ("tokenization", ["tokenize_pretrain_*.tsv"], "genome"),
    ("pretraining", ["pretrain*.tsv"], "steps"),
    ("embedding, half the tiles", ["embed_scale_embed_tiles_half*.tsv"], "regions"),
    ("embedding, all tiles", ["embed_scale_embed_tiles_[0-9]*.tsv", "embed_scale_embed_tiles.tsv"], "regions"),
    ("scoring, half the records", ["score_variants_scale_calls_half*.tsv"], "records"),
    ("scoring, all records", ["score_variants_scale_calls_[0-9]*.tsv", "score_variants_scale_calls.tsv"], "records"),
]


def measure(workdir: Path) -> list[dict]:
    """Per stage: its jobs' summed wall and CPU time, the wall time with the shards run side by
    side (the longest shard plus the join), the join's own time and the largest peak RSS."""
    rows = []
    for stage, patterns, grows in STAGES:
        files = sorted({f for p in patterns for f in workdir.glob(f"benchmarks/**/{p}")})
        if not files:
            raise SystemExit(f"no benchmark files for {stage} ({patterns}) under {workdir / 'benchmarks'}")
        tables = {f: pd.read_csv(f, sep="\t") for f in files}
        wall = {f: float(t["s"].iloc[0]) for f, t in tables.items()}
        shards = [w for f, w in wall.items() if "-of-" in f.name]
        join = sum(w for f, w in wall.items() if "-of-" not in f.name) if shards else 0.0
        rows.append({"stage": stage, "grows": grows, "jobs": len(files), "wall_s": sum(wall.values()),
                     "parallel_s": (max(shards) + join) if shards else sum(wall.values()), "join_s": join,
                     "cpu_s": sum(float(t["cpu_time"].iloc[0]) for t in tables.values()),
                     "rss_mb": max(float(t["max_rss"].iloc[0]) for t in tables.values())})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the NT-v2-50M shape, 20 steps, 100,000 records")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run here (default: a temporary one)")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    if not CHR20.exists():
        raise SystemExit(f"{CHR20} is missing: run `bash tests/fetch_test_data.sh` first")
    shape = SHAPES["full" if args.full else "reduced"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        copy_workflow(workdir, keep_existing=True)
        config = configuration(workdir, shape)
        (workdir / "scale.yaml").write_text(yaml.safe_dump(config))
        targets = ["results/chr20/embeddings/scale/embed_tiles.npy", "results/chr20/embeddings/scale/embed_tiles_half.npy",
                   "results/chr20/variants/scale/calls.vcf.gz", "results/chr20/variants/scale/calls_half.vcf.gz"]
        proc = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", str(args.cores),
                               "--configfile", "scale.yaml"], cwd=workdir, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
            return 1
        rows = measure(workdir)
        n_tiles = {s: len(pd.read_parquet(workdir / f"results/chr20/regions/{s}.parquet", columns=["name"]))
                   for s in ("embed_tiles", "embed_tiles_half")}
        with pysam.FastaFile(str(workdir / "resources/chr20/genome.fa.gz")) as fasta:
            chr20_bases = fasta.get_reference_length("20")
    records = {"scoring, half the records": shape["records"] // 2, "scoring, all records": shape["records"]}
    regions = {"embedding, half the tiles": n_tiles["embed_tiles_half"], "embedding, all tiles": n_tiles["embed_tiles"]}
    table = []
    for row in rows:
        if row["grows"] == "genome":
            scale = GRCH38_BASES / chr20_bases
            projection = f"GRCh38: {row['wall_s'] * scale / 3600:.2f} job h"
        elif row["grows"] == "records":
            per_record = row["wall_s"] / records[row["stage"]]
            projection = (f"5 M records: {per_record * 5e6 / 3600:.1f} job h; "
                          f"500 M: {per_record * 5e8 / 3600:.0f} job h")
        elif row["grows"] == "regions":
            projection = f"{row['wall_s'] / regions[row['stage']] * 1e3:.2f} job s per 1,000 regions"
        else:
            projection = "the same for any genome (a fixed number of steps)"
        sharded = row["parallel_s"] != row["wall_s"]
        table.append([row["stage"], str(row["jobs"]), f"{row['wall_s']:.1f}",
                      f"{row['parallel_s']:.1f} (join {row['join_s']:.1f})" if sharded else "",
                      f"{row['cpu_s']:.1f}", f"{row['rss_mb']:.0f}", projection])
        print(f"{row['stage']}: {row['jobs']} job(s), wall {row['wall_s']:.1f} s summed"
              + (f", {row['parallel_s']:.1f} s with the shards side by side (join {row['join_s']:.1f} s, "
                 f"{row['wall_s'] / row['parallel_s']:.2f}x)" if sharded else "")
              + f", CPU {row['cpu_s']:.1f} s, peak RSS {row['rss_mb']:.0f} MB; {projection}", flush=True)
    by_stage = {row["stage"]: row for row in rows}
    for what in ("embedding", "scoring"):
        half, whole = (by_stage[s] for s in by_stage if s.startswith(what))
        print(f"{what}: peak RSS {half['rss_mb']:.0f} MB at half the input, {whole['rss_mb']:.0f} MB at all of it "
              f"(ratio {whole['rss_mb'] / half['rss_mb']:.2f}; bounded: stays near 1 as the input doubles)")
    if args.markdown:
        arch = shape["architecture"]
        write_markdown(args.markdown,
                       f"{'Full' if args.full else 'Reduced'} run on GRCh37 chr20 ({chr20_bases / 1e6:.1f} Mb), "
                       f"{args.cores} cores: a {arch['n_layers']}-layer x {arch['d_model']} model "
                       f"({arch['max_len']} tokens), {shape['steps']} pretraining steps of {shape['batch']} windows, "
                       f"{n_tiles['embed_tiles']} embedding tiles, VCFs of {shape['records'] // 2} and "
                       f"{shape['records']} records, embedding and scoring in 2 shards each. Times sum a stage's "
                       "jobs (shards and join); peak RSS is the largest job's.",
                       ["stage", "jobs", "wall s, jobs summed", "wall s, shards side by side", "CPU s",
                        "peak RSS MB", "projection"], table,
                       "Shards side by side: the longest shard plus the join, what the stage takes with a worker "
                       "per shard. Projections scale the jobs' summed wall time (job hours; one thread each).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
