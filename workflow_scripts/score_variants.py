"""Rule score_variants: every record of a VCF scored zero-shot; annotated VCF, table, summary."""

from genofm.config import run_settings
from genofm.devices import torch_device
from genofm.markov import fit_markov
from genofm.provenance import provenance
from genofm.variant_scoring import ScoringConfig
from genofm.variants import CallsetConfig, ScoringInputs, ScoringOutputs, score_vcf
from genofm.workflow import run_script


def main(smk):
    source = provenance()
    meta = {
        "genofm_source": {"Version": source["genofm_version"], "Commit": source["git_commit"]},
        "genofm_callset": {"Name": smk.wildcards.callset, "Genome": smk.wildcards.genome,
                           "Model": smk.wildcards.model, **smk.params.callset},
    }
    baseline = None
    if smk.params.markov_order:
        baseline = fit_markov(smk.params.markov_order, list(smk.input.baseline_regions), smk.input.fasta)
    checks = run_settings(CallsetConfig, smk.config["variants"][smk.wildcards.callset])  # not tracked params
    score_vcf(ScoringInputs(smk.params.model_dir, smk.input.fasta, smk.input.vcf, baseline=baseline,
                            callset_key=f"variants.{smk.wildcards.callset}"),
              ScoringOutputs(smk.output.vcf, smk.output.table, smk.output.summary),
              ScoringConfig(**smk.params.scoring), CallsetConfig(**smk.params.callset, **checks),
              meta=meta, device=torch_device(smk.resources.gpu, "variant_scoring.resources.gpus"))


run_script(main, snakemake)  # noqa: F821
