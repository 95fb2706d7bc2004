"""Rules score_variants and score_variants_shard: every record of a VCF scored zero-shot
(annotated VCF, table, summary), in one job or in shards that score_variants then joins."""

from genofm.config import run_settings
from pathlib import Path

from genofm.conservation import PhylopScorer
from genofm.devices import torch_device
from genofm.embed import EmbedConfig
from genofm.finetuned import FinetunedHead
from genofm.heads import ProbeHead
from genofm.markov import fit_markov
from genofm.provenance import provenance
from genofm.variant_scoring import ScoringConfig
from genofm.variants import CallsetConfig, ScoringInputs, ScoringOutputs, ShardParts, gather_shards, score_vcf
from genofm.workflow import run_script


def main(smk):
    checks = run_settings(CallsetConfig, smk.config["variants"][smk.wildcards.callset])  # not tracked params
    callset = CallsetConfig(**smk.params.callset, **checks)
    callset_key = f"variants.{smk.wildcards.callset}"
    if hasattr(smk.input, "json_parts"):  # the shards' parts: join them
        parts = [ShardParts(*files) for files in zip(smk.input.vcf_parts, smk.input.tsv_parts, smk.input.json_parts)]
        gather_shards(parts, ScoringOutputs(smk.output.vcf, smk.output.table, smk.output.summary), callset,
                      callset_key)
        return
    source = provenance()
    meta = {
        "genofm_source": {"Version": source["genofm_version"], "Commit": source["git_commit"]},
        "genofm_callset": {"Name": smk.wildcards.callset, "Genome": smk.wildcards.genome,
                           "Model": smk.wildcards.model, **smk.params.callset},
    }
    baseline = None
    if smk.params.markov_order:
        baseline = fit_markov(smk.params.markov_order, list(smk.input.baseline_regions), smk.input.fasta)
    conservation = (PhylopScorer(smk.input.neutral_model, smk.input.alignment)
                    if hasattr(smk.input, "neutral_model") else None)
    heads = {}
    for task, head_json in zip(smk.params.heads, smk.input.head_meta):  # trained probes scoring each variant
        heads[task] = ProbeHead.load(Path(head_json).parent)
        heads[task].check_compatible(smk.params.model_dir, smk.params.head_embedding, f"{callset_key}.heads: {task}")
    device = torch_device(smk.resources.gpu, "variant_scoring.resources.gpus")
    finetuned = {task: FinetunedHead.load(directory, smk.params.model_dir, device,
                                          f"{callset_key}.finetuned_heads: {task}")
                 for task, directory in zip(smk.params.finetuned_heads, smk.input.finetuned)}
    sharded = hasattr(smk.wildcards, "shard")
    outputs = (ShardParts(smk.output.vcf, smk.output.tsv, smk.output.json) if sharded
               else ScoringOutputs(smk.output.vcf, smk.output.table, smk.output.summary))
    score_vcf(ScoringInputs(smk.params.model_dir, smk.input.fasta, smk.input.vcf, baseline=baseline,
                            conservation=conservation, callset_key=callset_key,
                            alignment=getattr(smk.input, "alignment", None), heads=heads,
                            head_embedding=EmbedConfig(**smk.params.head_embedding) if heads else None,
                            finetuned=finetuned),
              outputs, ScoringConfig(**smk.params.scoring), callset, meta=meta, device=device,
              shard=(int(smk.wildcards.shard), int(smk.wildcards.shards)) if sharded else None)


run_script(main, snakemake)  # noqa: F821
