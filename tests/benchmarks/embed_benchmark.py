"""Embedding throughput: genofm's Embedder against Hugging Face's EsmModel (the architecture
of Nucleotide Transformer v2) of the same size, mean-pooled sequence vectors on this CPU in
one run.

    python tests/benchmarks/embed_benchmark.py [--layers 4] [--d-model 256] [--heads 4]
        [--d-ff 1024] [--max-len 512] [--n 128] [--min-bp 500] [--max-bp 3000]
        [--hf-batch 16] [--rounds 3] [--warmup 32] [--threads 2] [--markdown docs/benchmarks/embed.md]

Both models have random weights (throughput does not depend on them), RoPE, eval mode and no
autograd, and are timed from DNA strings to an (n, d) matrix, tokenization included. Each is
run as its users run it: genofm through `Embedder(model, tokenizer, EmbedConfig(pooling=
"mean")).embed_sequences(seqs)`, which tokenizes, batches by length and pools over real tokens
(<cls> included); HF with the EsmTokenizer loaded from genofm's vocab.txt, `tokenizer(batch,
padding=True, return_tensors="pt")` on fixed-size batches in input order, `EsmModel(input_ids,
attention_mask, output_hidden_states=True)` and the mean of the last hidden state over
non-padding tokens. Sequences fit the context, so each is a single pass for both.

The weights differ, so the vectors cannot be compared; instead the two tokenizers are checked
to give the same ids, and each model's matrix to be (n, d) and finite on an untimed pass over
the first --warmup sequences, which is also its warmup. The models then alternate over several
rounds, each a full pass over all sequences; the median pass time of each is reported, so that
frequency drift and other load hit both alike. Prints sequences/s and Mb/s of each, the
forward-pass positions each runs (padding included), and the ratio genofm / HF (target >= 1.3x);
with --markdown, also as a markdown table (with the date, CPU, cores and torch version of the
run) in that file, which the docs' benchmark page includes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.embed import EmbedConfig, Embedder  # noqa: E402
from genofm.tokenizer import KmerTokenizer  # noqa: E402
from same_size import add_model_arguments, same_size_models  # noqa: E402  (beside this script)
from markdown_table import write_markdown  # noqa: E402  (beside this script)


def make_sequences(n: int, min_bp: int, max_bp: int, seed: int = 0) -> list[str]:
    """n random ACGT sequences of uniformly random lengths."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_bp, max_bp + 1, size=n)
    return ["".join(rng.choice(list("ACGT"), size=int(L))) for L in lengths]


def build_models(args, vocab: int):
    from transformers import EsmModel

    ours, hf = same_size_models(EsmModel, vocab, args.layers, args.d_model, args.heads, args.d_ff, args.max_len)
    return ours.eval(), hf.eval()


def hf_embedder(model, tokenizer, batch_size: int, counter: list[int]):
    """What an NT user writes: padded batches in input order, masked mean of the last layer."""

    @torch.no_grad()
    def embed(sequences: list[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(sequences), batch_size):
            enc = tokenizer(sequences[i:i + batch_size], padding=True, return_tensors="pt")
            counter.append(enc["input_ids"].numel())
            states = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           output_hidden_states=True).last_hidden_state  # (B, L, D)
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            out.append((states * mask).sum(1) / mask.sum(1))
        return torch.cat(out)

    return embed


def check(name: str, vectors: torch.Tensor, n: int, d: int) -> None:
    if tuple(vectors.shape) != (n, d):
        sys.exit(f"{name}: embeddings of shape {tuple(vectors.shape)}, expected {(n, d)}")
    if not torch.isfinite(vectors).all():
        sys.exit(f"{name}: embeddings are not all finite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--max-len", type=int, default=512, help="genofm context, <cls> included")
    parser.add_argument("--n", type=int, default=128, help="number of sequences")
    parser.add_argument("--min-bp", type=int, default=500)
    parser.add_argument("--max-bp", type=int, default=3000)
    parser.add_argument("--hf-batch", type=int, default=16, help="sequences per HF forward pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=32, help="sequences of the untimed check pass")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the figures as a markdown table to this file (for the docs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # for both models
    from transformers import AutoTokenizer

    tokenizer = KmerTokenizer()
    with tempfile.TemporaryDirectory() as vocab_dir:  # vocab.txt, as an NT user's tokenizer files
        tokenizer.save(vocab_dir)
        hf_tokenizer = AutoTokenizer.from_pretrained(vocab_dir, local_files_only=True)
    sequences = make_sequences(args.n, args.min_bp, args.max_bp)
    longest = max(len(tokenizer.encode(s)) for s in sequences)
    if longest > args.max_len:
        sys.exit(f"the longest sequence has {longest} tokens, more than --max-len {args.max_len}: lower --max-bp")
    for s in sequences[:8]:
        if tokenizer.encode(s).tolist() != hf_tokenizer(s)["input_ids"]:
            sys.exit("HF's EsmTokenizer and genofm's tokenizer give different ids")

    ours, hf = build_models(args, tokenizer.vocab_size)
    embedder = Embedder(ours, tokenizer, EmbedConfig(pooling="mean"))
    tokens: dict[str, list[int]] = {"genofm": [], "HF ESM": []}  # forward-pass positions, padding included
    ours.register_forward_pre_hook(lambda module, inputs: tokens["genofm"].append(inputs[0].numel()))
    runs = {"genofm": embedder.embed_sequences,
            "HF ESM": hf_embedder(hf, hf_tokenizer, args.hf_batch, tokens["HF ESM"])}
    warmup = sequences[:args.warmup]
    for name, run in runs.items():  # the check doubles as warmup
        check(name, run(warmup), len(warmup), args.d_model)
        tokens[name].clear()

    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in (runs.items() if r % 2 == 0 else reversed(runs.items())):
            started = time.perf_counter()
            run(sequences)
            times[name].append(time.perf_counter() - started)

    real = sum(len(tokenizer.encode(s)) for s in sequences)
    megabases = sum(map(len, sequences)) / 1e6
    print(f"model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, d_ff {args.d_ff}, "
          f"vocab {tokenizer.vocab_size}, RoPE, random weights, float32")
    print(f"data: {args.n} random sequences of {args.min_bp}-{args.max_bp} bp ({megabases:.3f} Mb, "
          f"{real:,d} tokens, longest {longest} <= context {args.max_len}); mean pooling, <cls> included")
    print(f"batching: genofm by length (batch_tokens {embedder.cfg.batch_tokens}); HF in input order, "
          f"{args.hf_batch} sequences per batch, padded to the longest")
    print(f"torch {torch.__version__}, {args.threads} thread(s), HF attention: {hf.config._attn_implementation}; "
          f"{args.rounds} rounds per model after a warmup on {len(warmup)} sequences, tokenization included")
    print(f"\n{'model':8s} {'params':>11s} {'tokens run':>11s} {'pass s':>8s} {'seq/s':>8s} {'Mb/s':>8s}")
    median, rows = {}, []
    for name, model in (("genofm", ours), ("HF ESM", hf)):
        median[name] = statistics.median(times[name])
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:8s} {params:11,d} {sum(tokens[name]) // args.rounds:11,d} {median[name]:8.2f} "
              f"{args.n / median[name]:8.1f} {megabases / median[name]:8.4f}")
        rows.append([{"genofm": "genofm `Embedder`", "HF ESM": "HF `EsmModel` + `EsmTokenizer`"}[name], f"{params:,d}",
                     f"{sum(tokens[name]) // args.rounds:,d}", f"{median[name]:.2f} s", f"{args.n / median[name]:.1f}",
                     f"{megabases / median[name]:.4f}"])
    print("(tokens run: forward-pass positions, padding included)")
    print(f"\nratio genofm / HF: {median['HF ESM'] / median['genofm']:.2f}x  (target >= 1.3x)")
    if args.markdown:
        write_markdown(
            args.markdown,
            f"`tests/benchmarks/embed_benchmark.py`: {args.n} random sequences of {args.min_bp}–{args.max_bp} bp "
            f"({real:,d} tokens), mean pooling, {args.layers} layers, d_model {args.d_model}, {args.heads} heads, "
            f"d_ff {args.d_ff}, random weights, float32, {args.threads} thread(s), tokenization included; genofm "
            f"batches by length, HF {args.hf_batch} sequences per batch in input order; median of {args.rounds} "
            "interleaved passes. Tokens run: forward-pass positions, padding included.",
            ["model", "parameters", "tokens run", "pass", "sequences/s", "Mb/s"],
            rows + [["**ratio genofm / HF**", "", "", "",
                     f"**{median['HF ESM'] / median['genofm']:.2f}×** (target ≥ 1.3×)", ""]])


if __name__ == "__main__":
    main()
