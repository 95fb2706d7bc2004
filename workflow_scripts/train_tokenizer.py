"""Rule train_tokenizer: a BPE vocabulary learnt on the training region sets (genofm.bpe)."""

from genofm.bpe import write_bpe
from genofm.workflow import run_script


def main(smk):
    write_bpe(list(smk.input.regions), smk.output.tokenizer, smk.params.vocab_size, smk.params.min_frequency)


run_script(main, snakemake)  # noqa: F821
