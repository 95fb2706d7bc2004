"""Rule attribute (not wired yet): gradient attributions of a region set, to a trained probe
head or to the LM's likelihood, then TF-MoDISco motifs matched against JASPAR.

The `snakemake` object it reads:
  input.model       a file inside the model directory (its parent is the model dir), as the
                    embed rule's input.model
  input.regions     the region set's parquet (chrom, start, end, strand, name, sequence)
  input.head_meta   optional: head.json of a trained probe head (its parent is the head dir);
                    absent or empty: the target is the LM's (pseudo-)log-likelihood
  output.one_hot    (n, L, 4) float32 .npy, A C G T, zero-padded to the longest region
  output.hypothetical  (n, L, 4) float32 .npy, mean-centred hypothetical contributions
  output.index      parquet: chrom start end strand name length target baseline_target token_sum
  output.motifs     TSV: one row per TF-MoDISco pattern and its JASPAR matches
  output.logos      PNG: each pattern's CWM beside its best JASPAR match
  params.attribution   dict of genofm.attribution.AttributionSettings fields (method, steps,
                       batch_regions, chunk_regions, class_name, mask_groups)
  params.max_regions   optional int: attribute only the first n regions
  params.modisco       optional dict of modiscolite.tfmodisco.TFMoDISco arguments
  params.jaspar        optional dict: collection (CORE), tax_group (vertebrates), n_null (50)
  resources.gpu     as the embed rule (torch_device)
  log[0]            the log file (progress lines with regions/s)
"""

from pathlib import Path

from genofm.attribution import AttributionSettings, attribute_regions
from genofm.devices import torch_device
from genofm.motifs import motif_report
from genofm.workflow import run_script


def main(smk):
    settings = AttributionSettings(**smk.params.attribution)
    head_meta = getattr(smk.input, "head_meta", None)
    head_dir = Path(head_meta).parent if head_meta else None
    device = torch_device(smk.resources.gpu, "attribution.resources.gpus")
    max_regions = getattr(smk.params, "max_regions", None)
    attribute_regions(Path(smk.input.model).parent, smk.input.regions, smk.output.one_hot, smk.output.hypothetical,
                      smk.output.index, head_dir, settings, device=device, max_regions=max_regions)
    motif_report(smk.output.one_hot, smk.output.hypothetical, smk.output.motifs, smk.output.logos,
                 title=f"{Path(smk.input.regions).name}: {settings.method}",
                 **getattr(smk.params, "jaspar", None) or {}, **getattr(smk.params, "modisco", None) or {})


run_script(main, snakemake)  # noqa: F821
