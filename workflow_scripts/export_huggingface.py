"""Rule export_huggingface: the trained model as a Hugging Face EsmForMaskedLM checkpoint with
its tokenizer files (logits checked equal to genofm's before anything is written)."""

from genofm.atomic import atomic_path
from genofm.hf import export_to_hf
from genofm.loading import load_model_and_tokenizer
from genofm.workflow import run_script


def main(smk):
    model, tokenizer = load_model_and_tokenizer(smk.params.model_dir)
    with atomic_path(smk.output.checkpoint) as tmp:
        export_to_hf(model, tokenizer, tmp)


run_script(main, snakemake)  # noqa: F821
