"""Rule alignment_arrays: a genome's whole-genome alignment (MAF) as per-contig arrays of the
bases other species align to each reference base (genofm.alignment)."""

import pysam

from genofm.alignment import build_arrays
from genofm.workflow import run_script


def main(smk):
    with pysam.FastaFile(smk.input.fasta) as fasta:
        contigs = dict(zip(fasta.references, fasta.lengths))
        build_arrays(smk.input.maf, smk.params.reference_species, smk.params.species, smk.output.arrays,
                     fasta=fasta, contigs=contigs, config_key=f"genomes.{smk.wildcards.genome}.alignment")


run_script(main, snakemake)  # noqa: F821
