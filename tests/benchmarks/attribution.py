"""Attribution throughput: genofm's batched integrated gradients over a region set against a
straightforward captum loop (one region at a time) on the same model, head and regions.

    python tests/benchmarks/attribution.py [--n 128] [--bp 300] [--k 6] [--layers 4] [--d-model 128]
        [--steps 16] [--batch 32] [--threads 2] [--markdown docs/benchmarks/attribution.md]

The model (random weights: speed does not depend on them) is a genofm DNALM over
non-overlapping k-mers; the target a random logistic probe head on the mean-pooled last layer
(genofm.attribution.HeadTarget), attributed to class 1's log-odds. Both use Gauss-Legendre
integrated gradients with --steps nodes from the same baseline (genofm.attribution.
uniform_baseline) in the token-embedding space:

- genofm: `Attributor(...).attribute(batch)` on --batch regions at a time, which also turns the
  gradients into per-base hypothetical contributions (what modisco reads);
- captum: for each region, `IntegratedGradients(forward).attribute(embeddings, baselines,
  n_steps, method="gausslegendre")` (captum batches the steps of one region), giving token x
  dimension attributions only: less output than genofm's.

Before timing, the token-level attributions of the first regions are checked to agree (sum over
d_model of captum's against genofm's gradient x (input - baseline)). Prints regions/s of each and
the ratio, with the date, CPU and cores of the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.attribution import AttributionSettings, Attributor, HeadTarget, uniform_baseline  # noqa: E402
from genofm.heads import ProbeHead  # noqa: E402
from genofm.model import DNALM, ModelConfig  # noqa: E402
from genofm.tokenizer import KmerTokenizer  # noqa: E402
from markdown_table import machine_line, write_markdown  # noqa: E402  (beside this script)


def setup(args):
    tokenizer = KmerTokenizer(k=args.k)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tokenizer.vocab_size, max_len=args.bp // args.k + 2, n_layers=args.layers,
                      d_model=args.d_model, n_heads=4, d_ff=4 * args.d_model)
    model = DNALM(cfg).eval()
    rng = np.random.default_rng(0)
    head = ProbeHead("classification", ["no", "yes"], np.zeros(args.d_model), np.ones(args.d_model),
                     [rng.normal(size=(args.d_model, 1))], [np.zeros(1)], "logistic",
                     {"embedding": {"layer": -1, "pooling": "mean"}})
    seqs = ["".join(rng.choice(list("ACGT"), args.bp)) for _ in range(args.n)]
    return model, tokenizer, HeadTarget(head), seqs


def captum_loop(model, tokenizer, target, attributor, seqs, steps):
    from captum.attr import IntegratedGradients

    out = []
    for seq in seqs:
        body = tokenizer.encode(seq, add_special_tokens=False)
        ids = attributor.batch_ids([body])

        def forward(embeddings):
            n = embeddings.shape[0]
            return target(model, ids.expand(n, -1), embeddings, [body.size] * n)

        x = model.embed(ids).detach()
        attributions = IntegratedGradients(forward).attribute(
            x, baselines=uniform_baseline(model, tokenizer, ids), n_steps=steps, method="gausslegendre")
        out.append(attributions.sum(-1)[0].detach())  # (T,) per token
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--bp", type=int, default=300)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tokenizer, target, seqs = setup(args)
    attributor = Attributor(model, tokenizer, target, AttributionSettings(steps=args.steps, batch_regions=args.batch))

    # agreement on the first regions (and warmup of both)
    check = seqs[:4]
    bodies = [tokenizer.encode(s, add_special_tokens=False) for s in check]
    grad, _, _, delta = attributor.gradients(attributor.batch_ids(bodies), [b.size for b in bodies])
    ours = (grad * delta).sum(-1)
    theirs = captum_loop(model, tokenizer, target, attributor, check, args.steps)
    worst = max(float((ours[i, :t.numel()] - t).abs().max() / t.abs().max()) for i, t in enumerate(theirs))
    print(f"token attributions, genofm vs captum, first {len(check)} regions: max relative difference {worst:.2e}")
    if worst > 1e-3:
        print("genofm and captum disagree", file=sys.stderr)
        return 1

    started = time.perf_counter()
    for lo in range(0, len(seqs), args.batch):
        out = attributor.attribute(seqs[lo:lo + args.batch])
        assert np.isfinite(out["hypothetical"]).all()
    genofm_s = time.perf_counter() - started
    started = time.perf_counter()
    captum_loop(model, tokenizer, target, attributor, seqs, args.steps)
    captum_s = time.perf_counter() - started
    rate_genofm, rate_captum = len(seqs) / genofm_s, len(seqs) / captum_s
    setting = (f"{len(seqs)} regions of {args.bp} bp, k={args.k} ({args.bp // args.k + 1} tokens), {args.layers} "
               f"layers, d_model {args.d_model}, integrated gradients with {args.steps} steps, {args.threads} threads")
    print(machine_line())
    print(setting)
    print(f"genofm (batches of {args.batch}, per-base maps included): {rate_genofm:.1f} regions/s")
    print(f"captum loop (one region at a time, token attributions only): {rate_captum:.1f} regions/s")
    print(f"ratio genofm / captum: {rate_genofm / rate_captum:.2f}x")
    if args.markdown:
        write_markdown(args.markdown, setting + ".", ["method", "regions/s"],
                       [[f"genofm, batches of {args.batch}", f"{rate_genofm:.1f}"],
                        ["captum IntegratedGradients, one region at a time", f"{rate_captum:.1f}"],
                        ["ratio", f"{rate_genofm / rate_captum:.2f}x"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
