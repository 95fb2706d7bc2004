"""Rule attribute: gradient attributions of a probe task's regions, to its trained probe, its
fine-tune or the model's likelihood, then TF-MoDISco motifs matched against JASPAR, with their logos."""

from pathlib import Path

from genofm.attribution import attribute_regions, region_width
from genofm.config import AttributionSettings, AttributionTaskSettings, run_settings
from genofm.devices import torch_device
from genofm.motifs import check_region_width, motif_report
from genofm.workflow import run_script


def main(smk):
    task = smk.params.task  # the settings that change a result; batch sizes are read from the config
    batches = run_settings(AttributionSettings, smk.config["probes"][smk.wildcards.task]["attribution"])
    settings = AttributionSettings(**{k: v for k, v in task.items() if k in AttributionSettings.__dataclass_fields__},
                                   **batches)
    head_dir = Path(smk.input.head_meta).parent if task["target"] == "probe" else None
    finetune_dir = smk.input.finetuned if task["target"] == "finetune" else None
    device = torch_device(smk.resources.gpu, f"probes.{smk.wildcards.task}.attribution.resources.gpus")
    modisco = AttributionTaskSettings(**task).modisco_args()
    max_regions = task["max_regions"] or None
    labels = {"labels_table": smk.input.labels or None, "labels_column": smk.params.labels_column}
    # before the attributions, which take far longer than this check
    check_region_width(region_width(smk.input.regions, max_regions, task["label"], **labels), modisco,
                       where=f"probes.{smk.wildcards.task}.attribution ({smk.input.regions})")
    attribute_regions(Path(smk.input.model).parent, smk.input.regions, smk.output.one_hot, smk.output.hypothetical,
                      smk.output.index, head_dir, settings, device=device, max_regions=max_regions,
                      finetune_dir=finetune_dir, label=task["label"], **labels)
    explained = {"probe": f"the {smk.wildcards.task} probe", "finetune": f"the {smk.wildcards.task} fine-tune",
                 "likelihood": "the likelihood"}[task["target"]]
    motif_report(smk.output.one_hot, smk.output.hypothetical, smk.output.motifs, smk.output.logos,
                 title=f"{smk.wildcards.task} ({smk.wildcards.model}): {settings.method} of {explained}",
                 collection=task["jaspar_collection"], tax_group=task["jaspar_tax_group"],
                 **modisco)


run_script(main, snakemake)  # noqa: F821
