"""Rule predict_finetuned: a task's fine-tune, trained on every region of the task, applied to the
sequences of another region set (one row per region)."""

import pyarrow.parquet as pq

from genofm.atomic import atomic_path
from genofm.devices import torch_device
from genofm.errors import GenofmInputError
from genofm.finetuned import FinetunedHead
from genofm.heads import prediction_table
from genofm.workflow import run_script


def main(smk):
    task, name = smk.wildcards.task, smk.wildcards.set
    where = f"probes.{task}.predict ({name}, fine-tuned)"
    regions = pq.read_table(smk.input.regions).to_pandas()
    empty = regions["name"][regions["sequence"].str.len() == 0]
    if len(empty):
        raise GenofmInputError(f"{smk.input.regions}: region {empty.iloc[0]!r} has no sequence to predict on")
    device = torch_device(smk.resources.gpu, f"probes.{task}.finetune.resources.gpus")
    head = FinetunedHead.load(smk.input.finetuned, smk.params.model_dir, device, where)
    out = head.predict(list(regions["sequence"])) if len(regions) else None
    table = prediction_table(regions, out, head.objective, head.classes, smk.input.regions)
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


run_script(main, snakemake)  # noqa: F821
