"""Rule tokenize (named so as not to shadow the standard library's tokenize): k-mer token ids + per-region offsets + tokenizer spec for one region set."""

from pathlib import Path

from genofm.tokenizer import KmerTokenizer
from genofm.tokens import tokenize_regions
from genofm.workflow import run_script


def main(smk):
    tokenizer = KmerTokenizer(k=smk.params.k, overlapping=smk.params.overlapping)
    tokenize_regions(smk.input.regions, tokenizer, Path(smk.output.tokens).parent)


run_script(main, snakemake)  # noqa: F821
