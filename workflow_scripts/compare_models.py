"""Rule compare_models: several models' scores of one call set side by side (class-pair AUROCs
with intervals and baselines, rank correlations, time per 1,000 variants) and one VCF with
every model's INFO fields."""

import json
import logging
import os
from pathlib import Path

import pandas as pd

from genofm.atomic import atomic_path, atomic_paths
from genofm.comparison import compare_class_pairs, merge_vcfs, plot_comparison, rank_correlations, speed
from genofm.variant_report import read_scores
from genofm.workflow import run_script

log = logging.getLogger("genofm.comparison")


def main(smk):
    models = smk.params.models
    tables = {m: read_scores(path) for m, path in zip(models, smk.input.tables)}
    summaries = {m: json.loads(Path(path).read_text()) for m, path in zip(models, smk.input.summaries)}
    pairs = compare_class_pairs(tables, smk.params.seed)
    with atomic_path(smk.output.pairs) as tmp:
        pairs.to_csv(tmp, sep="\t", index=False)
    with atomic_path(smk.output.plot) as tmp:
        plot_comparison(pairs, tmp, f"{smk.wildcards.callset}: {', '.join(models)}")
    with atomic_path(smk.output.correlations) as tmp:
        rank_correlations(tables).to_csv(tmp, sep="\t", index=False)
    # the scoring jobs' measured wall times (their benchmark files; a sharded call set's shards
    # summed), the one table that varies
    seconds = {m: sum(float(pd.read_csv(path, sep="\t")["s"].iloc[0]) if os.path.exists(path) else float("nan")
                      for path in paths) for m, paths in zip(models, smk.params.benchmarks)}
    with atomic_path(smk.output.speed) as tmp:
        speed(summaries, seconds).to_csv(tmp, sep="\t", index=False)
    with atomic_paths(smk.output.vcf, smk.output.tbi) as (vcf, tbi):
        merge_vcfs(dict(zip(models, smk.input.vcfs)), Path(vcf))
        os.replace(f"{vcf}.tbi", tbi)
    for row in pairs.itertuples():
        log.info("%s: %s", row.model, row.finding)


run_script(main, snakemake)  # noqa: F821
