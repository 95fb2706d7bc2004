"""Rule variant_report: score distributions by class, class-pair AUROCs, scores along the
genome, the top variants and the findings in words, from the scores table."""

import logging

from genofm.atomic import atomic_path
from genofm.findings import class_pair_findings
from genofm.variant_report import (class_pair_aurocs, plot_along_genome, plot_class_aurocs,
                                   plot_score_distributions, read_scores, scores_of, top_variants,
                                   training_line)
from genofm.workflow import run_script

log = logging.getLogger("genofm.variant_report")


def main(smk):
    table = read_scores(smk.input.table)
    name = f"{smk.wildcards.callset} ({smk.wildcards.model})"
    aurocs = class_pair_aurocs(table)
    with atomic_path(smk.output.aurocs) as tmp:
        aurocs.to_csv(tmp, sep="\t", index=False)
    findings = class_pair_findings(table, scores_of(table), seed=smk.params.seed)
    with atomic_path(smk.output.findings) as tmp:
        findings.to_csv(tmp, sep="\t", index=False)
    for finding in findings["finding"]:
        log.info(finding)
    with atomic_path(smk.output.top) as tmp:
        top_variants(table).to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(smk.output.distributions) as tmp:
        plot_score_distributions(table, tmp, f"{name}: scores by variant class")
    with atomic_path(smk.output.auroc_plot) as tmp:
        plot_class_aurocs(aurocs, tmp, f"{name}: AUROC of each class pair"
                          f"{training_line(smk.input.model_summary) if smk.input.model_summary else ''}")
    with atomic_path(smk.output.along_genome) as tmp:
        plot_along_genome(table, tmp, f"{name}: scores along the genome")


run_script(main, snakemake)  # noqa: F821
