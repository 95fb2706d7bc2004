"""Rule labelled_snvs: a VCF of SNVs with their true consequence, drawn from a GenBank annotation."""

import pysam

from genofm.atomic import atomic_path
from genofm.consequence import labelled_snv_set, read_genbank_cds, write_vcf
from genofm.errors import GenofmInputError
from genofm.regions import merged_intervals, read_regions
from genofm.workflow import run_script


def main(smk):
    spec = smk.params.spec
    cds, spans, accession = read_genbank_cds(smk.input.genbank)
    with pysam.FastaFile(smk.input.fasta) as fasta:
        chrom = accession if accession in fasta.references else None
        if chrom is None and fasta.nreferences == 1:
            chrom = fasta.references[0]  # a renamed one-contig genome
        if chrom is None:
            raise GenofmInputError(f"{smk.input.genbank}: its record {accession!r} is not a contig of {smk.input.fasta}")
        genome = fasta.fetch(chrom)
    within = None
    if hasattr(smk.input, "within"):
        regions = read_regions(smk.input.within, columns=["chrom", "start", "end"])
        within = merged_intervals(regions[regions["chrom"] == chrom])
    table = labelled_snv_set(genome, cds, spans, spec["per_class"], spec["seed"], within)
    with atomic_path(smk.output.vcf) as tmp:
        write_vcf(table, chrom, len(genome), tmp, source=f"genofm labelled_snvs from {smk.input.genbank}")


run_script(main, snakemake)  # noqa: F821
