"""Rule pretrain: train a DNA language model on token sets of one or more genomes.

Runs as a plain script or under torchrun (the rule picks by the configured process count):
    python workflow_scripts/pretrain.py --spec SPEC_JSON --gpus N --out DIR --checkpoints DIR
SPEC_JSON holds {"architecture": {...}, "training": {...}, "data": [{genome, train, valid,
weight}]}, as the rule builds it from the config; --gpus 0 trains on the CPU, else each process
on a GPU of its own.
"""

import argparse
import json

from genofm.model import ModelConfig
from genofm.pretrain import DataSpec, TrainConfig, train
from genofm.provenance import provenance
from genofm.workflow import run_cli


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="JSON: architecture, training, data")
    parser.add_argument("--gpus", type=int, default=0, help="0: the CPU; else one GPU per process")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--checkpoints", required=True, help="directory of resumable checkpoints")
    args = parser.parse_args()
    spec = json.loads(args.spec)
    train(ModelConfig.from_dict(spec["architecture"]), TrainConfig.from_dict(spec["training"]),
          [DataSpec(**d) for d in spec["data"]], args.out, args.checkpoints, provenance(),
          gpus=args.gpus)


if __name__ == "__main__":
    run_cli(main)
