"""Rule probe: cross-validated classifier or regressor on embeddings, with the k-mer baseline
beside it; then the probe fit on every region, saved for the predict rule."""

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from genofm.atomic import atomic_path, atomic_paths
from genofm.embed import load_embeddings
from genofm.heads import EMBEDDING_KEYS, model_fingerprint
from genofm.loading import load_model_and_tokenizer, tokenizer_label
from genofm.probe import ProbeConfig, labels_from_table, plot_probe, run_probe, summary_rows
from genofm.provenance import provenance
from genofm.workflow import run_script


def main(smk):
    cfg = ProbeConfig(**smk.params.probe)
    matrix, index = load_embeddings(smk.input.matrix, smk.input.index)
    regions = pq.read_table(smk.input.regions, columns=["name", "sequence"]).to_pandas()
    if list(regions["name"]) != list(index["name"]):
        raise_mismatch(smk)
    if smk.input.labels:
        index["label"] = labels_from_table(index["name"], smk.input.labels, smk.params.labels_column,
                                           smk.input.regions)
    task, model = smk.wildcards.task, smk.wildcards.model
    model_dir = Path(smk.input.model).parent
    _, tokenizer = load_model_and_tokenizer(model_dir)
    head_meta = {"task": task, "model": model, "region_set": smk.params.region_set,
                 "model_sha256": model_fingerprint(model_dir), "tokenizer": tokenizer_label(tokenizer),
                 "embedding": {k: smk.params.embedding[k] for k in EMBEDDING_KEYS}}
    metrics, predictions, head = run_probe(matrix, index, list(regions["sequence"]), cfg, smk.input.regions,
                                           head_meta)
    metrics.update(task=task, model=model, config=smk.params.probe, provenance=provenance())
    with atomic_path(smk.output.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    with atomic_path(smk.output.predictions) as tmp:
        predictions.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(smk.output.summary) as tmp:
        pd.DataFrame(summary_rows(task, model, metrics)).to_csv(tmp, sep="\t", index=False)
    with atomic_path(smk.output.plot) as tmp:
        plot_probe(predictions, metrics, tmp, f"{task}: {model} embeddings vs k-mer baseline")
    with atomic_paths(smk.output.head_weights, smk.output.head_meta) as (weights, _):
        head.save(weights.parent)  # head.safetensors and head.json, the temporary names of both outputs


def raise_mismatch(smk):
    from genofm.errors import GenofmInputError

    raise GenofmInputError(f"{smk.input.index} does not list the regions of {smk.input.regions} in order: "
                           "the embeddings are stale; rerun the embed rule")


run_script(main, snakemake)  # noqa: F821
