"""Conservation on a real alignment: phyloP on the Zymoseptoria whole-genome alignment, judged on
labelled coding SNVs overall and within codon position.

    python tests/benchmarks/conservation_benchmark.py [--per-class 3000] [--neutral-sites 100000]
        [--markdown docs/benchmarks/conservation.md]

Needs `bash tests/fetch_test_data.sh zymo` and phast (phyloFit, phyloP). The MAF (13 genomes,
reference Z. tritici IPO323) becomes arrays (genofm.alignment); the gene models (JGI GFF2, CDS
grouped by `name`) give four-fold degenerate sites, a seeded sample of which phyloFit fits the
neutral model on (REV, the TBA tree's topology made binary), and every possible coding SNV with
its true consequence, of which a seeded sample per class (synonymous, missense, stop-gained)
is scored by phyloP (LRT, CONACC) at its position. Prints each class pair's AUROC with a
bootstrap interval, overall and within codon position, beside the trivial "codon position 1
or 2" baseline (genofm.findings).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from genofm.alignment import AlignedColumns, build_arrays  # noqa: E402
from genofm.consequence import coding_snvs, read_cds_lines  # noqa: E402
from genofm.conservation import (fit_neutral_model, leaves, neutral_site_sample, parse_topology,  # noqa: E402
                                 phylop_scores, tree_from_maf)
from genofm.findings import class_pair_findings  # noqa: E402
from markdown_table import write_markdown  # noqa: E402

ZYMO = REPO / ".cache/testdata/zymo"
REFERENCE = "Ztritici_IPO323"
CLASSES = ("synonymous", "missense", "stop_gained")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=3000)
    parser.add_argument("--neutral-sites", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    maf, fasta_path = ZYMO / "tba_refIPO323.maf.gz", ZYMO / "IPO323.fa.gz"
    if not fasta_path.exists():
        raise SystemExit(f"{fasta_path} is missing: run `bash tests/fetch_test_data.sh zymo` first")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, pysam.FastaFile(str(fasta_path)) as fasta:
        tree = tree_from_maf(maf)
        species = [s for s in leaves(parse_topology(tree)) if s != REFERENCE]
        build_arrays(maf, REFERENCE, species, Path(tmp) / "arrays", fasta=fasta,
                     contigs=dict(zip(fasta.references, fasta.lengths)))
        columns = AlignedColumns(Path(tmp) / "arrays")
        cds = read_cds_lines(ZYMO / "Mgraminicolav2.FrozenGeneCatalog20080910.gff.gz", "name", table=1)
        snvs = []
        per_contig = -(-args.per_class // len(cds))
        for contig in sorted(cds):
            table = coding_snvs(fasta.fetch(contig), cds[contig])
            for kind in CLASSES:
                rows = table[table["class"] == kind]
                pick = np.sort(rng.choice(len(rows), min(per_contig, len(rows)), replace=False))
                snvs.append(rows.iloc[pick].assign(contig=contig))
        sample, total = neutral_site_sample(columns, fasta, cds, args.neutral_sites, args.seed)
        fit = fit_neutral_model(columns, sample, tree, Path(tmp) / "neutral.mod", tmp, args.seed)
        print(f"neutral model: {fit['columns']:,} of {total:,} four-fold degenerate sites; total branch length "
              f"{fit['total_branch_length']:.2f} substitutions per site", flush=True)
        table = pd.concat(snvs, ignore_index=True)
        sites = [(c, group["pos"].to_numpy()) for c, group in table.groupby("contig", sort=False)]
        table = pd.concat([group for _, group in table.groupby("contig", sort=False)], ignore_index=True)
        table["phylop"] = phylop_scores(Path(tmp) / "neutral.mod", columns, sites, tmp)
    scored = table["phylop"].notna()
    counts = ", ".join(f"{(table['class'] == k).sum()} {k}" for k in CLASSES)
    print(f"{len(table):,} labelled SNVs ({counts}); "
          f"{scored.mean():.1%} with a phyloP score (the others: no other genome aligned); "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    findings = class_pair_findings(table[scored], {"phylop": ("phyloP", 1.0)}, seed=args.seed)
    rows = []
    for _, f in findings.iterrows():
        codon = f.get("codon_baseline_auroc")
        codon_text = f"{codon:.3f}" if isinstance(codon, float) and not np.isnan(codon) else ""
        rows.append([f"{f['class_a']} vs {f['class_b']}", str(f["stratum"]), f"{f['n_a']} / {f['n_b']}",
                     f"{f['auroc']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]", codon_text])
        print(f"{rows[-1][0]:28s} {rows[-1][1]:>10s}  n {rows[-1][2]:>12s}  phyloP AUROC {rows[-1][3]}"
              + (f"  codon-position baseline {codon_text}" if codon_text else ""))
    if args.markdown:
        write_markdown(args.markdown,
                       f"phyloP (LRT, CONACC) on the Zymoseptoria alignment (13 genomes on Z. tritici IPO323); neutral "
                       f"model fitted by phyloFit (REV) on {fit['columns']:,} four-fold degenerate sites (total branch "
                       f"length {fit['total_branch_length']:.2f}); coding SNVs of the JGI gene models, {args.per_class} "
                       f"drawn per class (seed {args.seed}), those with a score kept. AUROC of the first class above "
                       "the second (higher phyloP = more conserved), 95% bootstrap interval.",
                       ["class pair", "codon position", "n", "phyloP AUROC [95% CI]",
                        "codon position 1 or 2 (trivial) AUROC"], rows,
                       "Within a codon position the trivial baseline is 0.5 by construction.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
