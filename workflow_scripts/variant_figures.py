"""Rule variant_figures: in-silico mutagenesis heatmap and attention maps of a region (the last layer's as a
PNG, every layer and head as an interactive page)."""

import pandas as pd
import pysam

from genofm.alignment import AlignedColumns
from genofm.attention_page import attention_maps, write_attention_page
from genofm.atomic import atomic_path
from genofm.loading import load_model_and_tokenizer
from genofm.variant_report import figure_region, ism_matrix, ism_score, plot_attention, plot_ism, read_scores
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
        maps = attention_maps(scorer, seq, smk.params.figure_tokens, WindowKey(contig, start, end))
        with atomic_path(smk.output.attention) as tmp:
            plot_attention(maps.head_mean(), maps.tokens, tmp,
                           f"Last-layer attention over {label} ({smk.wildcards.model})")
        with atomic_path(smk.output.attention_html) as tmp:
            write_attention_page(maps, tmp, f"Attention over {label} ({smk.wildcards.model})", contig, start)


run_script(main, snakemake)  # noqa: F821
