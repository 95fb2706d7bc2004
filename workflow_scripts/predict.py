"""Rule predict: a probe trained on every region of its task, applied to the embeddings of
another region set (one row per region)."""

from pathlib import Path

from genofm.atomic import atomic_path
from genofm.embed import load_embeddings
from genofm.heads import ProbeHead, predict_regions
from genofm.workflow import run_script


def main(smk):
    head = ProbeHead.load(Path(smk.input.head_meta).parent)
    head.check_compatible(Path(smk.input.model).parent, smk.params.embedding,
                          f"probes.{smk.wildcards.task}.predict ({smk.wildcards.set})")
    matrix, index = load_embeddings(smk.input.matrix, smk.input.index)
    table = predict_regions(head, matrix, index, smk.input.index)
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


run_script(main, snakemake)  # noqa: F821
