"""Rule extract_regions: one region set (BED, annotation features or tiling) with sequences."""

from genofm.regions import build_region_set, write_regions
from genofm.workflow import run_script


def main(smk):
    annotation = smk.input.get("annotation")
    regions = build_region_set(smk.params.spec, smk.input.fasta, annotation,
                               smk.params.annotation_format, set_name=smk.wildcards.set,
                               rename=smk.params.rename)
    write_regions(regions, smk.input.fasta, smk.output.regions, set_name=smk.wildcards.set)


run_script(main, snakemake)  # noqa: F821
