"""Rule import_huggingface: check a local Hugging Face checkpoint (offline) and record where it is
and the checksums of its files, for the rules that use it in place of a pretrained model."""

import json

from genofm.atomic import atomic_path
from genofm.hf import checkpoint_pointer
from genofm.workflow import run_script


def main(smk):
    pointer = checkpoint_pointer(smk.params.checkpoint, smk.params.trust_remote_code)
    with atomic_path(smk.output.pointer) as tmp:
        tmp.write_text(json.dumps(pointer, indent=2) + "\n")


run_script(main, snakemake)  # noqa: F821
