"""Rule probe_summary: one table of every probe task (probe and baseline rows)."""

import pandas as pd

from genofm.atomic import atomic_path
from genofm.workflow import run_script


def main(smk):
    tables = [pd.read_csv(path, sep="\t") for path in smk.input]
    with atomic_path(smk.output.table) as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, sep="\t", index=False)


run_script(main, snakemake)  # noqa: F821
