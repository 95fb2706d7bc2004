"""Rules embed and embed_shard: one vector per region of a region set (layer, pooling from
config), in one job or in shards that embed then joins."""

from pathlib import Path

from genofm.devices import torch_device
from genofm.embed import EmbedConfig, embed_regions, gather_embeddings
from genofm.workflow import run_script


def main(smk):
    if hasattr(smk.wildcards, "shard") or not smk.input.parts:
        cfg = EmbedConfig(**smk.params.embedding)
        device = torch_device(smk.resources.gpu, "embeddings.resources.gpus")
        shard = (int(smk.wildcards.shard), int(smk.wildcards.shards)) if hasattr(smk.wildcards, "shard") else None
        embed_regions(Path(smk.input.model).parent, smk.input.regions, smk.output.matrix,
                      None if shard else smk.output.index, cfg, device=device, shard=shard,
                      alignment=smk.input.alignment or None)
        return
    gather_embeddings(list(smk.input.parts), smk.input.regions, smk.output.matrix, smk.output.index)


run_script(main, snakemake)  # noqa: F821
