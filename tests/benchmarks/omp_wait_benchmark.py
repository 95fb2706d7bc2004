"""OpenMP wait policy: a training step of the M. tuberculosis recipe with torch's OpenMP threads
spin-waiting (ACTIVE, libgomp's behaviour for a few ms before it sleeps) or sleeping at once
(PASSIVE, what genofm sets unless the user chose), on an idle machine and on one loaded with
busy processes (a shared cluster node, a laptop).

    python tests/benchmarks/omp_wait_benchmark.py [--steps 3] [--load 4] [--threads 2]

Each figure is the median seconds per optimizer step in a fresh process (the policy is read
once, when torch loads); ratios are against PASSIVE in the same condition. Both policies give
the same weights (checked: the loss after the last step is printed and compared).
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
print(json.dumps({"seconds": statistics.median(times), "loss": float(loss),
                  "policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def busy(stop_at: float) -> None:
    while time.time() < stop_at:  # bounded: stops by itself
        pass


def measure(policy: str, steps: int, threads: int) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(threads),
                          str(REPO / "config/examples/mtb.yaml")], env=env, capture_output=True, text=True,
                         timeout=1800)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--load", type=int, default=4, help="busy processes of the loaded condition")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    args = parser.parse_args()
    print(f"OpenMP wait policy, M. tuberculosis recipe (1-mer dilated conv, next-token), {args.threads} threads, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'condition':<22}{'policy':<9}{'s/step':>9}{'vs PASSIVE':>12}{'loss':>10}")
    for condition, load in (("idle", 0), (f"loaded ({args.load} busy)", args.load)):
        workers = [multiprocessing.Process(target=busy, args=(time.time() + 900,), daemon=True) for _ in range(load)]
        for w in workers:
            w.start()
        try:
            results = {policy: measure(policy, args.steps, args.threads) for policy in ("PASSIVE", "ACTIVE")}
        finally:
            for w in workers:
                w.terminate()
                w.join()
        base = results["PASSIVE"]["seconds"]
        for policy, r in results.items():
            print(f"{condition:<22}{policy:<9}{r['seconds']:>9.2f}{r['seconds'] / base:>11.2f}x{r['loss']:>10.4f}")
        if results["PASSIVE"]["loss"] != results["ACTIVE"]["loss"]:
            raise SystemExit("the two policies gave different losses: the policy must change speed only")


if __name__ == "__main__":
    main()
