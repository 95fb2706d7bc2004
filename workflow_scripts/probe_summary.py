"""Rule probe_summary: one table of every probe task (probe, fine-tune and baseline rows), each
method with its finding against the task's k-mer baseline in words."""

import pandas as pd

from genofm.atomic import atomic_path
from genofm.findings import probe_findings
from genofm.workflow import run_script


def main(smk):
    tables = [pd.read_csv(path, sep="\t") for path in smk.input]
    with atomic_path(smk.output.table) as tmp:
        probe_findings(pd.concat(tables, ignore_index=True)).to_csv(tmp, sep="\t", index=False)


run_script(main, snakemake)  # noqa: F821
