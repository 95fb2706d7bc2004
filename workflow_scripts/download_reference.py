"""Rule download_reference: fetch the reference, verify it, write bgzip FASTA + .fai + .gzi."""

from genofm.reference import prepare_reference
from genofm.workflow import run_script


def main(smk):
    p = smk.params
    contigs = prepare_reference(
        p.source, smk.output.fasta, checksum=p.checksum, contigs=p.contigs or None,
        rename=p.rename, soft_mask=p.soft_mask, ambiguous_bases=p.ambiguous_bases,
        **smk.config["download"])  # how to fetch: not a tracked param
    contigs.to_csv(smk.output.contigs, sep="\t", index=False)


run_script(main, snakemake)  # noqa: F821 (Snakemake injects `snakemake`)
