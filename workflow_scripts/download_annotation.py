"""Rule download_annotation: fetch the GTF/GFF3, verify its checksum, store it gzipped."""

from genofm.annotation import prepare_annotation
from genofm.workflow import run_script


def main(smk):
    prepare_annotation(smk.params.source, smk.output.annotation, checksum=smk.params.checksum,
                       **smk.config["download"])  # how to fetch: not a tracked param


run_script(main, snakemake)  # noqa: F821
