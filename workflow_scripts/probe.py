"""Rule probe: cross-validated classifier on embeddings, with the k-mer baseline beside it."""

import json

import pandas as pd
import pyarrow.parquet as pq

from genofm.atomic import atomic_path
from genofm.embed import load_embeddings
from genofm.probe import ProbeConfig, plot_curves, run_probe, summary_rows
from genofm.provenance import provenance
from genofm.workflow import run_script


def main(smk):
    cfg = ProbeConfig(**smk.params.probe)
    matrix, index = load_embeddings(smk.input.matrix, smk.input.index)
    regions = pq.read_table(smk.input.regions, columns=["name", "sequence"]).to_pandas()
    if list(regions["name"]) != list(index["name"]):
        raise_mismatch(smk)
    task, model = smk.wildcards.task, smk.wildcards.model
    metrics, predictions = run_probe(matrix, index, list(regions["sequence"]), cfg, smk.input.regions)
    metrics.update(task=task, model=model, config=smk.params.probe, provenance=provenance())
    with atomic_path(smk.output.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    with atomic_path(smk.output.predictions) as tmp:
        predictions.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(smk.output.summary) as tmp:
        pd.DataFrame(summary_rows(task, model, metrics)).to_csv(tmp, sep="\t", index=False)
    with atomic_path(smk.output.plot) as tmp:
        plot_curves(predictions, metrics, tmp, f"{task}: {model} embeddings vs k-mer baseline")


def raise_mismatch(smk):
    from genofm.errors import GenofmInputError

    raise GenofmInputError(f"{smk.input.index} does not list the regions of {smk.input.regions} in order: "
                           "the embeddings are stale; rerun the embed rule")


run_script(main, snakemake)  # noqa: F821
