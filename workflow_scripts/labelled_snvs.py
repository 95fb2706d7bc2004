"""Rule labelled_snvs: a VCF of SNVs with their true consequence, drawn from a GenBank file or
from the genome's annotation (genofm.consequence)."""

import numpy as np
import pysam

from genofm.alignment import AlignedColumns, other_species_bases
from genofm.atomic import atomic_path
from genofm.consequence import (labelled_snv_set, labelled_snvs_of_genome, read_cds_lines, read_feature_spans,
                                read_genbank_cds, write_vcf)
from genofm.conservation import transcript_attribute
from genofm.errors import GenofmInputError
from genofm.regions import merged_intervals, read_regions
from genofm.workflow import run_script


def within_intervals(smk, contigs):
    """The `within_set` regions merged, by contig (None: the whole genome)."""
    if not hasattr(smk.input, "within"):
        return None
    regions = read_regions(smk.input.within, columns=["chrom", "start", "end"])
    return {c: merged_intervals(regions[regions["chrom"] == c]) for c in contigs}


def aligned_enough(arrays, minimum):
    """keep(contig, positions): at least `minimum` other species have a base (A, C, G, T or N)."""
    columns = AlignedColumns(arrays)

    def keep(contig, positions):
        if contig not in columns.contigs:
            return np.zeros(len(positions), dtype=bool)
        return other_species_bases(columns.take(contig, positions)) >= minimum

    return keep


def main(smk):
    spec = smk.params.spec
    with pysam.FastaFile(smk.input.fasta) as fasta:
        lengths = list(zip(fasta.references, fasta.lengths))
        if spec["annotation"]:
            attribute = transcript_attribute(smk.params.transcript_attribute, smk.params.annotation_format)
            cds = read_cds_lines(smk.input.annotation, attribute, table=spec["genetic_code"])
            keep = (aligned_enough(smk.input.alignment, spec["min_aligned_species"])
                    if spec["min_aligned_species"] else None)
            table = labelled_snvs_of_genome(fasta, cds, read_feature_spans(smk.input.annotation), spec["per_class"],
                                            spec["seed"], keep, within_intervals(smk, fasta.references))
            source = smk.input.annotation
        else:
            gene_cds, spans, accession = read_genbank_cds(smk.input.genbank)
            chrom = accession if accession in fasta.references else None
            if chrom is None and fasta.nreferences == 1:
                chrom = fasta.references[0]  # a renamed one-contig genome
            if chrom is None:
                raise GenofmInputError(f"{smk.input.genbank}: its record {accession!r} is not a contig of "
                                       f"{smk.input.fasta}")
            within = within_intervals(smk, [chrom])
            table = labelled_snv_set(fasta.fetch(chrom), gene_cds, spans, spec["per_class"], spec["seed"],
                                     within[chrom] if within else None).assign(chrom=chrom)
            lengths = [(chrom, fasta.get_reference_length(chrom))]
            source = smk.input.genbank
    with atomic_path(smk.output.vcf) as tmp:
        write_vcf(table, lengths, tmp, source=f"genofm labelled_snvs from {source}")


run_script(main, snakemake)  # noqa: F821
