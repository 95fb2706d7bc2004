"""Rule embed: one vector per region of a region set (layer, pooling from config)."""

from pathlib import Path

from genofm.devices import torch_device
from genofm.embed import EmbedConfig, embed_regions
from genofm.workflow import run_script


def main(smk):
    cfg = EmbedConfig(**smk.params.embedding)
    device = torch_device(smk.resources.gpu, "embeddings.resources.gpus")
    embed_regions(Path(smk.input.model).parent, smk.input.regions, smk.output.matrix, smk.output.index, cfg,
                  device=device)


run_script(main, snakemake)  # noqa: F821
