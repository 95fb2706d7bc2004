"""Rule neutral_model: phyloFit's model of neutral evolution for a genome's alignment, fitted on
four-fold degenerate sites of its annotation (genofm.conservation)."""

import json
import tempfile
from pathlib import Path

import pysam

from genofm.atomic import atomic_path
from genofm.conservation import fit_from_annotation, transcript_attribute, tree_from_maf
from genofm.workflow import run_script


def main(smk):
    tree = smk.params.tree or tree_from_maf(smk.input.maf)
    attribute = transcript_attribute(smk.params.attribute, smk.params.annotation_format)
    with pysam.FastaFile(smk.input.fasta) as fasta, tempfile.TemporaryDirectory() as tmp, \
            atomic_path(smk.output.model) as model:
        fit = fit_from_annotation(smk.input.arrays, smk.input.annotation, attribute, fasta, tree, smk.params.sites,
                                  smk.params.seed, model, tmp)
    with atomic_path(smk.output.summary) as summary:
        Path(summary).write_text(json.dumps(fit, indent=1) + "\n")


run_script(main, snakemake)  # noqa: F821
