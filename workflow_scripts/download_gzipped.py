"""Rules download_annotation and download_alignment: fetch a file (its checksum verified) and
store it gzipped."""

from genofm.download import fetch_gzipped
from genofm.workflow import run_script


def main(smk):
    fetch_gzipped(smk.params.source, smk.output[0], checksum=smk.params.checksum,
                  **smk.config["download"])  # how to fetch: not a tracked param


run_script(main, snakemake)  # noqa: F821
