"""Rule tokenize (named so as not to shadow the standard library's tokenize): token ids + per-region offsets + tokenizer files for one region set."""

from pathlib import Path

from genofm.subword import SubwordTokenizer
from genofm.tokenizer import KmerTokenizer
from genofm.tokens import tokenize_regions
from genofm.workflow import run_script


def main(smk):
    if smk.params.type == "bpe":  # the vocabulary rule train_tokenizer learnt
        tokenizer = SubwordTokenizer.load(smk.input.bpe)
    else:
        tokenizer = KmerTokenizer(k=smk.params.k, overlapping=smk.params.overlapping)
    tokenize_regions(smk.input.regions, tokenizer, Path(smk.output.tokens).parent)


run_script(main, snakemake)  # noqa: F821
