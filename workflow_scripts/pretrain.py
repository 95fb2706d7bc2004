"""Rule pretrain: train a DNA language model on token sets of one or more genomes.

Under Snakemake, the rule's params hold what the model depends on (architecture, training,
data); how it runs (nodes, processes, GPUs, threads, logging and checkpoint cadence) comes from
the model's resources and config, so changing it reruns nothing. One process trains here; more
run this file again under torchrun (over several nodes: srun, one agent per node), as a command:
    python workflow_scripts/pretrain.py --spec SPEC_JSON --out DIR --checkpoints DIR [--gpus N] [--threads N]
SPEC_JSON holds {"architecture": {...}, "training": {...}, "data": [{genome, train, valid,
weight}]} and, for a model continued from another, "init_from": {"model": name, "path": its
directory}; --gpus 0 trains on the CPU, else each process on a GPU of its own.
"""

import argparse
import json
import os
import subprocess

from genofm.config import TrainConfig, run_settings
from genofm.errors import GenofmInputError
from genofm.launch import Layout, launch_command
from genofm.model import ModelConfig
from genofm.pretrain import DataSpec, train
from genofm.provenance import provenance
from genofm.transfer import InitFrom
from genofm.workflow import log_stream, run_cli, run_script


def run(spec: dict, out: str, checkpoints: str, gpus: int, threads: int) -> None:
    init_from = InitFrom(**spec["init_from"]) if spec.get("init_from") else None
    train(ModelConfig.from_dict(spec["architecture"]), TrainConfig.from_dict(spec["training"]),
          [DataSpec(**d) for d in spec["data"]], out, checkpoints, provenance(), gpus=gpus, threads=threads,
          init_from=init_from)


def main(smk):
    model = smk.config["models"][smk.wildcards.model]
    spec = json.loads(smk.params.spec)
    spec["training"].update(run_settings(TrainConfig, model["training"]))
    resources = model["resources"]
    layout = Layout(resources["nodes"], resources["processes"], resources["gpus"], smk.threads)
    if layout.world == 1:
        run(spec, smk.params.out, smk.params.checkpoints, layout.gpus, layout.threads)
        return
    script = [os.path.join(smk.scriptdir, "pretrain.py"), "--spec", json.dumps(spec), "--out", smk.params.out,
              "--checkpoints", smk.params.checkpoints, "--gpus", str(layout.gpus),
              "--threads", str(layout.threads_per_process)]
    command = launch_command(layout, script, smk.wildcards.model, os.environ.get("SLURM_JOB_ID", ""))
    log = log_stream()  # the workers log to stderr: into the rule's log, after our lines
    status = subprocess.run(command, stdout=log, stderr=log).returncode
    if status:
        raise GenofmInputError(f"the {layout.world} training processes failed ({command[0]} exit {status}): "
                               "see above")


def cli():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="JSON: architecture, training, data")
    parser.add_argument("--gpus", type=int, default=0, help="0: the CPU; else one GPU per process")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per process (0: torch's default)")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--checkpoints", required=True, help="directory of resumable checkpoints")
    args = parser.parse_args()
    run(json.loads(args.spec), args.out, args.checkpoints, args.gpus, args.threads)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
elif __name__ == "__main__":
    run_cli(cli)
