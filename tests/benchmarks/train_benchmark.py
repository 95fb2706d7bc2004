"""Training throughput: genofm's DNALM against Hugging Face's EsmForMaskedLM (the
architecture of Nucleotide Transformer v2) of the same size, masked-LM training steps on
this CPU in one run.

    python tests/benchmarks/train_benchmark.py [--layers 4] [--d-model 256] [--heads 4]
        [--d-ff 1024] [--seq-len 512] [--batch 8] [--steps 5] [--rounds 3] [--warmup 2]
        [--threads 2] [--dtype float32|bfloat16] [--markdown docs/benchmarks/train.md]

A step is forward on a masked-LM batch (15% of the k-mers predicted), loss, backward, AdamW
step and zero_grad, each model as it is used in practice: genofm computes logits only at the
predicted positions (`logits_at`, as genofm.pretrain does), HF computes its loss from
`model(input_ids, attention_mask, labels)`. Both get the same batches, threads and flushed
denormals. The models alternate over several rounds (warmup excluded) and the median step
time of each is reported, so that frequency drift hits both alike.

Prints parameters, median step time, tokens/s and MFU of each, and the ratio genofm / HF
(target >= 1.3x). MFU follows PaLM's "model FLOPs": the FLOPs the task needs, counted the
same way for both models (6 x non-embedding parameters x tokens, plus attention
12 x layers x seq_len^2 x d_model x batch, plus the vocabulary projection at the predicted
positions only), divided by the step time and by the FLOP/s of a dense n x n matmul of the
same dtype timed in the same rounds. Work a model does beyond that (HF's logits at every
position) earns it no credit. Exits 1 if a loss is not finite, 0 otherwise.

With --markdown, the figures are also written as a markdown table (with the date, CPU, cores and
torch version of the run) to that file, which the docs' benchmark page includes.

The ESM model ties its output embedding to the input one as genofm does (EsmConfig's
default), and both have ESM's LM head (dense d x d, GELU, LayerNorm, projection with a bias:
genofm's default lm_head), so the parameter counts differ only by ESM's tiny contact head. bfloat16 autocasts both forward passes; on a CPU without native
bf16 (AVX512-BF16 / AMX) it is emulated and ~25x slower: use it with --steps 1 --rounds 1.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.data import IGNORE, mask_for_mlm  # noqa: E402
from genofm.model import DNALM  # noqa: E402
from genofm.tokenizer import CLS, KmerTokenizer  # noqa: E402
from same_size import add_model_arguments, same_size_models  # noqa: E402  (beside this script)
from markdown_table import write_markdown  # noqa: E402  (beside this script)


def make_batches(tokenizer: KmerTokenizer, n: int, batch: int, seq_len: int, seed: int = 0):
    """n masked-LM batches: <cls> then random k-mers, BERT masking as genofm.pretrain does."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(tokenizer.kmer_offset, tokenizer.vocab_size, (batch, seq_len), generator=generator)
        ids[:, 0] = CLS
        out.append(mask_for_mlm(ids, tokenizer, 0.15, generator))
    return out


def build_models(args, vocab: int):
    from transformers import EsmForMaskedLM

    ours, hf = same_size_models(EsmForMaskedLM, vocab, args.layers, args.d_model, args.heads, args.d_ff, args.seq_len)
    return ours.train(), hf.train()


def make_step(model, hf: bool, autocast: bool):
    """One training step; returns the loss."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)

    def step(inputs, labels):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if hf:
                loss = model(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=labels).loss
            else:
                counted = labels != IGNORE
                logits = model(inputs, logits_at=counted).logits  # (N, V)
                loss = F.cross_entropy(logits.float(), labels[counted])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


@torch.no_grad()
def check_shapes(ours, hf, inputs, labels) -> None:
    B, L = inputs.shape
    V, n = ours.cfg.vocab_size, int((labels != IGNORE).sum())
    full, sparse = ours(inputs).logits, ours(inputs, logits_at=labels != IGNORE).logits
    theirs = hf(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=labels)
    for name, got, want in [("genofm logits", full, (B, L, V)), ("genofm logits_at", sparse, (n, V)),
                            ("HF logits", theirs.logits, (B, L, V))]:
        if tuple(got.shape) != want:
            sys.exit(f"{name}: shape {tuple(got.shape)}, expected {want}")


def matmul_flops(n: int, dtype: torch.dtype, repeats: int = 8) -> float:
    """Best achieved FLOP/s of an n x n x n matmul."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n ** 3 / best


def model_flops(ours: DNALM, batches, batch: int, seq_len: int) -> float:
    """Model FLOPs of one training step (forward + backward = 3 x forward)."""
    cfg = ours.cfg
    tokens = batch * seq_len
    body = 6 * ours.num_parameters(embeddings=False) * tokens
    attention = 12 * cfg.n_layers * seq_len ** 2 * cfg.d_model * batch
    predicted = statistics.mean(int((labels != IGNORE).sum()) for _, labels in batches)
    head = 6 * cfg.d_model * cfg.vocab_size * predicted
    return body + attention + head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sequence, <cls> included")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: autocast of the forward passes")
    parser.add_argument("--matmul-n", type=int, default=1024)
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the figures as a markdown table to this file (for the docs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as genofm.pretrain does on CPU; for both models
    autocast = args.dtype == "bfloat16"

    tokenizer = KmerTokenizer()
    batches = make_batches(tokenizer, 4, args.batch, args.seq_len)
    ours, hf = build_models(args, tokenizer.vocab_size)
    check_shapes(ours, hf, *batches[0])
    steps = {"genofm": make_step(ours, False, autocast), "HF ESM": make_step(hf, True, autocast)}
    losses = {name: [step(*batches[0])] for name, step in steps.items()}
    for name, loss in losses.items():
        if not math.isfinite(loss[0]):
            print(f"{name}: loss {loss[0]} is not finite")
            sys.exit(1)

    for name, step in steps.items():
        for i in range(args.warmup):
            step(*batches[(i + 1) % len(batches)])
    times: dict[str, list[float]] = {name: [] for name in steps}
    peaks = []
    for r in range(args.rounds):
        peaks.append(matmul_flops(args.matmul_n, getattr(torch, args.dtype)))
        for name, step in (steps.items() if r % 2 == 0 else reversed(steps.items())):
            for i in range(args.steps):
                started = time.perf_counter()
                losses[name].append(step(*batches[i % len(batches)]))
                times[name].append(time.perf_counter() - started)

    peak = statistics.median(peaks)
    flops = model_flops(ours, batches, args.batch, args.seq_len)
    tokens = args.batch * args.seq_len
    print(f"model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, d_ff {args.d_ff}, "
          f"vocab {tokenizer.vocab_size}, {args.batch} x {args.seq_len} tokens, {args.dtype}")
    print(f"torch {torch.__version__}, {args.threads} thread(s), HF attention: {hf.config._attn_implementation}; "
          f"{args.rounds} rounds x {args.steps} steps per model after {args.warmup} warmup")
    print(f"dense matmul {args.matmul_n}^3 {args.dtype}: {peak / 1e9:.1f} GFLOP/s (median of rounds)")
    print(f"model FLOPs per step: {flops / 1e9:.1f} GFLOP (same count for both; head at predicted positions only)")
    if autocast and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print("note: this CPU has no native bf16, so bf16 is emulated; its MFU figures are not meaningful")
    print(f"\n{'model':8s} {'params':>11s} {'step ms':>9s} {'tokens/s':>10s} {'MFU':>7s} {'loss first->last':>18s}")
    median, params = {}, {}
    for name, model in (("genofm", ours), ("HF ESM", hf)):
        median[name] = statistics.median(times[name])
        params[name] = sum(p.numel() for p in model.parameters())
        print(f"{name:8s} {params[name]:11,d} {median[name] * 1e3:9.1f} {tokens / median[name]:10.0f} "
              f"{flops / median[name] / peak:7.1%} {losses[name][0]:8.3f} ->{losses[name][-1]:7.3f}")
    print(f"\nHF ESM has {params['HF ESM'] / params['genofm'] - 1:+.1%} parameters "
          "(its contact head)")
    print(f"ratio genofm / HF: {median['HF ESM'] / median['genofm']:.2f}x  (target >= 1.3x)")
    if not all(math.isfinite(x) for x in losses["genofm"]):
        print("genofm's loss is not finite")
        sys.exit(1)
    if args.markdown:
        write_markdown(
            args.markdown,
            f"`tests/benchmarks/train_benchmark.py`: masked-LM training steps, {args.layers} layers, d_model "
            f"{args.d_model}, {args.heads} heads, d_ff {args.d_ff}, vocab {tokenizer.vocab_size}, {args.batch} × "
            f"{args.seq_len} tokens, {args.dtype}, {args.threads} thread(s), median of {args.rounds} interleaved "
            f"rounds × {args.steps} steps; MFU against a dense {args.matmul_n}³ {args.dtype} matmul timed in the "
            f"same run ({peak / 1e9:.1f} GFLOP/s).",
            ["model", "parameters", "step", "tokens/s", "MFU"],
            [[label, f"{params[name]:,d}", f"{median[name] * 1e3:.0f} ms", f"{tokens / median[name]:.0f}",
              f"{flops / median[name] / peak:.0%}"]
             for name, label in (("genofm", "genofm `DNALM`"), ("HF ESM", "HF `EsmForMaskedLM`"))]
            + [["**ratio genofm / HF**", "", "", f"**{median['HF ESM'] / median['genofm']:.2f}×** (target ≥ 1.3×)", ""]])


if __name__ == "__main__":
    main()
