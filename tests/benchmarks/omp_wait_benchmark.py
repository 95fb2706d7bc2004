"""OpenMP wait policy: a training step of the M. tuberculosis recipe with torch's OpenMP threads
(libgomp) waiting for work as libgomp does by default (spin ~300,000 iterations, then sleep),
sleeping at once (OMP_WAIT_POLICY=PASSIVE), spinning briefly (GOMP_SPINCOUNT=10000: what genofm
sets unless the user set either) or spinning for ever (ACTIVE), on an idle machine and on one
loaded with busy processes (a shared cluster node, a laptop).

    python tests/benchmarks/omp_wait_benchmark.py [--steps 5] [--load 6] [--threads 2] [--markdown PATH]

Each figure is the median seconds per optimizer step in a fresh process (the policy is read
once, when torch loads); ratios are against libgomp's default in the same condition. All
policies give the same loss (checked), so the policy changes speed only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from markdown_table import write_markdown  # beside this script

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, statistics, sys, time
import torch
from genofm.model import DNALM, ModelConfig
import yaml
steps, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
recipe = yaml.safe_load(open(sys.argv[3]))["models"]["mtb_conv"]
cfg = ModelConfig.from_dict({**recipe["architecture"], "vocab_size": 11, "causal": True})
model = DNALM(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
batch = recipe["training"]["micro_batch_size"]
x = torch.randint(4, 9, (batch, cfg.max_len))
times, loss = [], None
for step in range(steps + 1):  # the first step warms up
    started = time.perf_counter()
    logits = model(x[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step:
        times.append(time.perf_counter() - started)
print(json.dumps({"seconds": statistics.median(times), "loss": float(loss)}))
"""


def busy(stop_at: float) -> None:
    while time.time() < stop_at:  # bounded: stops by itself
        pass


# name: the environment torch starts with (libgomp reads it when torch loads)
POLICIES = {
    "default": {},  # libgomp's own: spin ~300k iterations, then sleep
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},  # sleep at once
    "SPIN10k": {"GOMP_SPINCOUNT": "10000"},  # spin briefly, then sleep: genofm's default
    "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},  # spin for ever
}


def measure(policy: str, steps: int, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(POLICIES[policy], PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(threads),
                          str(REPO / "config/examples/mtb.yaml")], env=env, capture_output=True, text=True,
                         timeout=1800)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--load", type=int, default=6, help="busy processes of the loaded condition")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file (for the docs)")
    args = parser.parse_args()
    print(f"OpenMP wait policy, M. tuberculosis recipe (1-mer dilated conv, next-token), {args.threads} threads, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'condition':<22}{'policy':<9}{'s/step':>9}{'vs default':>12}{'loss':>10}")
    rows = []
    for condition, load in (("idle", 0), (f"loaded ({args.load} busy)", args.load)):
        workers = [multiprocessing.Process(target=busy, args=(time.time() + 900,), daemon=True) for _ in range(load)]
        for w in workers:
            w.start()
        try:
            results = {policy: measure(policy, args.steps, args.threads) for policy in POLICIES}
        finally:
            for w in workers:
                w.terminate()
                w.join()
        base = results["default"]["seconds"]
        for policy, r in results.items():
            print(f"{condition:<22}{policy:<9}{r['seconds']:>9.2f}{r['seconds'] / base:>11.2f}x{r['loss']:>10.4f}")
            setting = " ".join(f"{k}={v}" for k, v in POLICIES[policy].items()) or "(libgomp's default)"
            rows.append([condition, setting, f"{r['seconds']:.2f}", f"{r['seconds'] / base:.2f}x"])
        if len({r["loss"] for r in results.values()}) > 1:
            raise SystemExit("the policies gave different losses: the policy must change speed only")
    if args.markdown:
        write_markdown(args.markdown, f"M. tuberculosis recipe, {args.threads} torch threads, median of {args.steps} "
                       f"steps; loaded: {args.load} busy processes.",
                       ["condition", "OpenMP setting", "s / step", "vs default"], rows)


if __name__ == "__main__":
    main()
