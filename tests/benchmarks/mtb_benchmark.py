"""Model-quality benchmark: zero-shot variant effects on M. tuberculosis H37Rv.

Runs config/examples/mtb.yaml through the workflow (download from a file: URL, held-out
tiling, tokenization, pretraining, labelled SNVs from the GenBank annotation,
scoring with the order-5 Markov baseline beside the model, the report tables), then prints
the AUROCs of the model and the baseline side by side with the pretraining time and hardware.

    python tests/benchmarks/mtb_benchmark.py                 # the full run (~30 min on 2 cores)
    python tests/benchmarks/mtb_benchmark.py --max-steps 40  # a quick check of the plumbing

--max-steps overrides the recipe's step count (a different run, in its own directory: its
figures say nothing about the model). Outputs go under --directory (default: the checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from stratified import model_line, report  # noqa: E402  (beside this script)
PAIRS = [("stop_gained", "synonymous"), ("missense", "synonymous"), ("stop_gained", "intergenic"),
         ("missense", "intergenic"), ("synonymous", "intergenic")]
TARGETS = {("stop_gained", "synonymous"): 0.9, ("missense", "synonymous"): 0.7}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default=str(REPO / "config/examples/mtb.yaml"))
    parser.add_argument("--directory", default="",
                        help="working directory of the run (default: the checkout; .cache/mtb_quick with overrides)")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--max-steps", type=int, default=0, help="override the pretraining steps (plumbing checks)")
    parser.add_argument("--per-class", type=int, default=0, help="override the SNVs drawn per class")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the stratified table there (and the paired one beside it)")
    args = parser.parse_args()
    overridden = bool(args.max_steps or args.per_class)
    args.directory = args.directory or str(REPO / ".cache/mtb_quick" if overridden else REPO)
    Path(args.directory).mkdir(parents=True, exist_ok=True)

    subprocess.run(["bash", str(REPO / "tests/fetch_test_data.sh"), "mtb"], check=True,
                   env={**os.environ, "GENOFM_TESTDATA": str(Path(args.directory).resolve() / ".cache/testdata")})
    config = yaml.safe_load(Path(args.configfile).read_text())
    configfile = Path(args.configfile).resolve()
    if overridden:  # a modified copy, run elsewhere, so the real run's outputs stay untouched
        for model in config["models"].values():
            if args.max_steps:
                training = model["training"]
                training["max_steps"] = args.max_steps
                training["warmup_steps"] = min(training.get("warmup_steps", 100), args.max_steps // 2)
                for key in ("eval_every", "checkpoint_every", "metrics_every", "log_every"):
                    training[key] = min(training.get(key, 100), args.max_steps)
        for callset in config["variants"].values():
            if args.per_class:
                callset["labelled_snvs"]["per_class"] = args.per_class
        configfile = Path(args.directory) / "mtb_benchmark_config.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    callset, spec = next(iter(config["variants"].items()))
    genome, model = spec["genome"], spec["model"]
    base = f"results/{genome}/variants/{model}/{callset}"
    targets = [f"{base}/class_auroc.tsv", f"{base}/ism.png"]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--configfile",
               str(configfile), "--directory", args.directory, "--cores", args.cores, "--printshellcmds", *targets]
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, check=True)

    run = Path(args.directory)
    aurocs = pd.read_csv(run / f"{base}/class_auroc.tsv", sep="\t")
    summary = json.loads((run / f"results/models/{model}/summary.json").read_text())
    scored = pd.read_csv(run / f"{base}.tsv", sep="\t", usecols=["class", "status"])
    scores = [s for s in ("llr", "influence", "lldiff", "emb_cosine", "markov") if s in set(aurocs["score"])]
    print()
    print(f"M. tuberculosis H37Rv, held-out genes: {len(scored)} SNVs "
          f"({', '.join(f'{c} {n}' for c, n in scored['class'].value_counts().sort_index().items())})")
    print(f"model {model}: {summary['parameters']:,} parameters, {summary['steps']} steps, pretraining "
          f"{summary['seconds'] / 60:.1f} min on {summary['hardware']}; final val loss "
          f"{summary['final_val_loss']:.4f} (unigram entropy {summary['unigram_entropy']:.4f})")
    header = f"{'AUROC':<28}" + "".join(f"{s:>12}" for s in scores) + f"{'target':>9}"
    print(header)
    print("-" * len(header))
    met = True
    for positive, negative in PAIRS:
        row = f"{positive + ' vs ' + negative:<28}"
        for score in scores:
            value = aurocs[(aurocs["score"] == score) & (aurocs["positive"] == positive)
                           & (aurocs["negative"] == negative)]["auroc"]
            row += f"{float(value.iloc[0]):>12.3f}" if len(value) else f"{'-':>12}"
            if score == scores[0] and (positive, negative) in TARGETS and len(value):
                met &= float(value.iloc[0]) >= TARGETS[(positive, negative)]
        target = TARGETS.get((positive, negative))
        print(row + (f"{'>= ' + str(target):>9}" if target else ""))
    explained = {"llr": "the model's masked-marginal LLR, both strands",
                 "influence": "the change in the model's log-likelihood of the bases after the variant, on the "
                              "strand where it is most negative",
                 "lldiff": "the log-likelihood difference of the ALT and REF windows, both strands",
                 "emb_cosine": "cosine distance of the window embeddings"}
    print("(" + "; ".join(f"{s}: {explained[s]}" for s in scores if s in explained)
          + f"; markov: order-{config.get('variant_scoring', {}).get('markov_order', 5)} Markov baseline on the same "
          f"training blocks. Larger AUROC: the first class scores as more disruptive. Targets apply to {scores[0]}.)")
    for name, values in reference_aurocs(run, config, callset, spec).items():
        print(f"{name:<34}" + "  ".join(f"{p[0][:4]}/{p[1][:4]} {a:.3f}" for p, a in values.items()))
    print("(references, not zero-shot scores: all know each SNV's reading frame from the annotation. Codon usage "
          "scores log f(ALT codon) - log f(REF codon) in the training genes; the frame-aware Markov model is the "
          "baseline given each base's codon position: the level of a model that infers the frame perfectly, with "
          "a 5-base memory. The amino-acid rows merge synonymous codons, so synonymous SNVs score 0: amino-acid "
          "usage scores log f(ALT amino acid) - log f(REF amino acid); the model row is the model's own "
          "log P(ALT amino acid) - log P(REF amino acid) from P(codon | 255 bases each side). The gap between "
          "these two is what the model knows about which amino acid belongs where)")
    print("targets met" if met else "targets NOT met")
    print("\nStratified (genofm.findings: bootstrap intervals, within codon positions):")
    facts = [f"M. tuberculosis H37Rv, held-out genes: {len(scored)} SNVs", model_line(run, model)]
    report(run, genome, callset, [model], facts, args.markdown,
           "The single-sequence recipe of config/examples/mtb.yaml; Markov: the order-5 baseline on the same SNVs.")
    return 0


def reference_aurocs(run: Path, config: dict, callset: str, spec: dict) -> dict:
    """AUROCs of the frame-knowing references on the same SNVs (redrawn: the draw is
    deterministic), fitted on the training regions, and of the trained model told the frame."""
    from sklearn.metrics import roc_auc_score

    sys.path.insert(0, str(REPO))  # tools/, which is not installed
    from genofm.consequence import labelled_snv_set, read_genbank_cds
    from genofm.files import open_text
    from genofm.loading import load_model_and_tokenizer
    from genofm.regions import merged_intervals, read_regions
    from tools.amino_acid_reference import model_amino_acid_scores
    from tools.coding_references import codon_usage_scores, frame_aware_markov_scores

    draw = spec["labelled_snvs"]
    model = config["models"][spec["model"]]
    genome_name = spec["genome"]
    with open_text(run / f"resources/{genome_name}/genome.fa.gz") as handle:
        genome = "".join(line.strip() for line in handle if not line.startswith(">")).upper()
    cds, spans, _ = read_genbank_cds(run / draw["genbank"])
    within = merged_intervals(read_regions(run / f"results/{genome_name}/regions/{draw['within_set']}.parquet"))
    train = merged_intervals(pd.concat(read_regions(run / f"results/{genome_name}/regions/{name}.parquet")
                                       for name in model["genomes"][genome_name]["train_sets"]))
    snvs = labelled_snv_set(genome, cds, spans, draw["per_class"], draw["seed"], within)
    order = config.get("variant_scoring", {}).get("markov_order", 5)
    references = {"codon-usage reference": codon_usage_scores(genome, cds, snvs, train),
                  f"frame-aware order-{order} Markov": frame_aware_markov_scores(genome, cds, snvs, train, order),
                  "amino-acid usage reference": codon_usage_scores(genome, cds, snvs, train, level="amino_acid")}
    model, tokenizer = load_model_and_tokenizer(run / f"results/models/{spec['model']}")
    if model.cfg.causal and tokenizer.k == 1:  # P(codon | context) needs next-base prediction
        references["model, frame given, amino acids"] = model_amino_acid_scores(model, tokenizer, genome, cds, snvs)
    out = {}
    for name, scores in references.items():
        out[name] = {}
        for positive, negative in PAIRS[:3]:
            keep = snvs["class"].isin([positive, negative]).to_numpy() & np.isfinite(scores)
            if len(set(snvs["class"].to_numpy()[keep])) == 2:  # codon usage leaves intergenic SNVs unscored
                out[name][(positive, negative)] = roc_auc_score(snvs["class"].to_numpy()[keep] == positive,
                                                                -scores[keep])
    return out


if __name__ == "__main__":
    sys.exit(main())
