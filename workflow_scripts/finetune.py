"""Rule finetune: pretrained model + classification or regression head on a labelled region set
(LoRA, IA3 or full), on the probe task's folds; the final model trained on every region is saved."""

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from genofm.alignment import AlignedColumns
from genofm.atomic import atomic_path
from genofm.devices import torch_device
from genofm.finetune import FinetuneConfig, cross_validate_finetune
from genofm.model import ModelConfig
from genofm.config import FoldConfig
from genofm.probe import check_labels, folds_of, labels_from_table, summary_rows
from genofm.provenance import provenance
from genofm.workflow import run_script


def main(smk):
    regions = pq.read_table(smk.input.regions).to_pandas()
    if smk.input.labels:
        regions["label"] = labels_from_table(regions["name"], smk.input.labels, smk.params.labels_column,
                                             smk.input.regions)
    fold_cfg = FoldConfig(**smk.params.probe)
    labels = check_labels(regions["label"], smk.input.regions, fold_cfg.objective, regions["name"])
    folds = folds_of(labels, regions["chrom"].to_numpy(), fold_cfg)
    cfg = FinetuneConfig(**smk.params.finetune)
    device = torch_device(smk.resources.gpu, f"probes.{smk.wildcards.task}.finetune.resources.gpus")
    aligned = None
    if smk.input.alignment:  # an alignment-aware model: each region's aligned bases
        model_config = ModelConfig.from_dict(json.loads((Path(smk.params.model_dir) / "config.json").read_text()))
        aligned = AlignedColumns(smk.input.alignment).region_codes(
            regions["chrom"], regions["start"], regions["end"], regions["strand"], model_config.aligned_species)
    result, _ = cross_validate_finetune(smk.params.model_dir, list(regions["sequence"]), labels, folds, cfg,
                                        out_dir=smk.output.model_dir, device=device, aligned=aligned)
    task, model = smk.wildcards.task, smk.wildcards.model
    metrics = {"task": task, "model": model, "method": f"finetune_{cfg.method}", "n_regions": len(labels),
               "cv": f"holdout contigs {','.join(smk.params.probe['holdout_contigs'])}"
               if smk.params.probe["holdout_contigs"]
               else f"{len(folds)}-fold" if fold_cfg.objective == "regression" else f"stratified {len(folds)}-fold",
               "results": {f"finetune_{cfg.method}": {k: v for k, v in result.items() if k != "trainable_parameters"}},
               "trainable_parameters": result.get("trainable_parameters"), "config": smk.params.finetune,
               "provenance": provenance()}
    with atomic_path(smk.output.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    with atomic_path(smk.output.summary) as tmp:
        pd.DataFrame(summary_rows(task, model, metrics)).to_csv(tmp, sep="\t", index=False)


run_script(main, snakemake)  # noqa: F821
