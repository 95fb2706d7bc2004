"""Rule variant_figures: in-silico mutagenesis heatmap and last-layer attention map of a region."""

import pandas as pd
import pysam

from genofm.alignment import AlignedColumns
from genofm.atomic import atomic_path
from genofm.loading import load_model_and_tokenizer
from genofm.variant_report import (figure_region, ism_matrix, ism_score, last_layer_attention, plot_attention,
                                   plot_ism, read_scores)
from genofm.variant_scoring import ScoringConfig, VariantScorer, WindowKey
from genofm.workflow import run_script


def main(smk):
    model, tokenizer = load_model_and_tokenizer(smk.params.model_dir)
    cfg = ScoringConfig(**{**smk.params.scoring, "embedding": False, "llr": True})
    alignment = AlignedColumns(smk.input.alignment) if hasattr(smk.input, "alignment") else None
    with pysam.FastaFile(smk.input.fasta) as fasta:
        scorer = VariantScorer(model, tokenizer, fasta, cfg, alignment=alignment)
        length = smk.params.figure_tokens * tokenizer.k
        contig, start, end = figure_region(smk.params.figure_region, read_scores(smk.input.table), fasta, length)
        label = f"{contig}:{start + 1:,}-{end:,}"
        matrix, seq = ism_matrix(scorer, contig, start, end)
        score = ism_score(scorer)  # what the A C G T columns hold
        table = pd.DataFrame(matrix.T, columns=list("ACGT"))
        table.insert(0, "ref", list(seq))
        table.insert(0, "pos", range(start + 1, end + 1))
        table.insert(0, "chrom", contig)
        table.insert(len(table.columns), "score", score)
        with atomic_path(smk.output.ism_table) as tmp:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.5g")
        with atomic_path(smk.output.ism) as tmp:
            plot_ism(matrix, seq, contig, start, tmp, f"In-silico mutagenesis of {label} ({smk.wildcards.model})",
                     score)
        attention, tokens = last_layer_attention(scorer, seq, smk.params.figure_tokens, WindowKey(contig, start, end))
        with atomic_path(smk.output.attention) as tmp:
            plot_attention(attention, tokens, tmp, f"Last-layer attention over {label} ({smk.wildcards.model})")


run_script(main, snakemake)  # noqa: F821
