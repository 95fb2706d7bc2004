"""Each model family genofm reads, scored and embedded by genofm against the straightforward
transformers loop for the same checkpoint, on this CPU in one run.

    python tests/benchmarks/families_benchmark.py [--variants 200] [--regions 64] [--hidden 128]
        [--layers 4] [--window 255] [--threads 2] [--scan-tokens 400] [--markdown docs/benchmarks/families.md]

Checkpoints are built here with random weights (tools/tiny_checkpoints.py, at --hidden and
--layers): Nucleotide Transformer (ESM, 6-mers), GPN (ConvNet, bases), a Llama causal LM over
bases, a BERT masked LM over bases and one over BPE tokens (DNABERT-2's layout, the BPE trained
on the genome). Variants are random SNVs of a random 40 kb genome.

- Scoring, genofm: `VariantScorer(..., ScoringConfig(window=..., rc_average=True,
  embedding=False)).score(alleles)` (masked LLR or log-likelihood difference, both strands).
- Scoring, the loop: for each SNV and strand, the window of the same length centred on it,
  through the checkpoint's own tokenizer and model one at a time: masked LMs mask the variant's
  token and read logit(ALT) - logit(REF); the BPE model masks each token covering the variant in
  the REF and the ALT window in turn (the PLL rule); causal LMs sum log P over the REF window and
  the ALT window.
- Embedding, genofm: `Embedder(...).embed_sequences(regions)`; the loop: each region through
  the tokenizer and the model alone, the mean of the last hidden state.

Each way runs twice, alternating, and the faster pass counts (a shape's first pass builds its
kernels). Then each checkpoint alone, without padding, at batch 1, 8 and 32: milliseconds per
region, which show how much batching can save at all on this machine. Prints, per family,
variants/s and regions/s of each and the ratio genofm / loop (target >= 1.3x); with --markdown
also as a table (with the date, CPU, cores and torch version) for the docs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genofm.embed import EmbedConfig, Embedder  # noqa: E402
from genofm.loading import load_model_and_tokenizer  # noqa: E402
from genofm.sequence import reverse_complement  # noqa: E402
from genofm.variant_scoring import ScoringConfig, VariantScorer  # noqa: E402
from genofm.vcf import Allele  # noqa: E402
from markdown_table import write_markdown  # noqa: E402  (beside this script)
from tools import tiny_checkpoints as tiny  # noqa: E402


def families(args) -> dict:
    """name -> (builder, masked LM?, genofm's window in bases)."""
    h, n = args.hidden, args.layers
    genome = args.genome
    return {
        "Nucleotide Transformer (ESM, 6-mers)": (lambda d: tiny.make_nt(d, layers=n, hidden=h, max_positions=512),
                                                 True, 6 * args.window),
        "GPN (ConvNet, bases)": (lambda d: tiny.make_gpn(d, hidden=h, layers=n), True, args.window),
        "Llama causal LM (bases)": (lambda d: tiny.make_llama(d, hidden=h, layers=n, positions=512), False,
                                    args.window),
        "BERT masked LM (bases)": (lambda d: tiny.make_bert(d, hidden=h, layers=n, positions=512), True, args.window),
        "BERT masked LM (BPE)": (lambda d: tiny.make_bert_bpe(d, [genome[i:i + 1000] for i in range(0, len(genome), 1000)],
                                                              hidden=h, layers=n), True, args.window),
    }


def loop_llr(hf_tokenizer, hf, window: str, rel: int, ref: str, alt: str, k: int, first) -> float:
    """Masked LLR by the checkpoint's own tokenizer and model, one strand of one variant."""
    start = rel - rel % k
    token = window[start:start + k]
    alt_token = token[:rel - start] + alt + token[rel - start + 1:]
    pieces = [window[i:i + k] for i in range(0, len(window), k)]
    ids = ([first] if first is not None else []) + hf_tokenizer.convert_tokens_to_ids(
        [p if p in hf_tokenizer.get_vocab() else p.lower() for p in pieces])
    position = (1 if first is not None else 0) + start // k
    ids[position] = hf_tokenizer.mask_token_id
    with torch.no_grad():
        logits = hf(input_ids=torch.tensor([ids])).logits[0, position]
    vocab = hf_tokenizer.get_vocab()
    pick = {t: vocab.get(t, vocab.get(t.lower())) for t in (token, alt_token)}
    return float(logits[pick[alt_token]] - logits[pick[token]])


def loop_pll(hf_tokenizer, hf, ref: str, alt: str, rel: int) -> float:
    """PLL(ALT) - PLL(REF) of an SNV over the tokens covering it, one masked pass per token."""
    def tokenize(seq):
        enc = hf_tokenizer(seq, add_special_tokens=False, return_offsets_mapping=True)
        return enc["input_ids"], enc["offset_mapping"]

    (ref_ids, ref_spans), (alt_ids, alt_spans) = tokenize(ref), tokenize(alt)
    s, e = rel, rel + 1
    while s not in {a for a, _ in ref_spans} or s not in {a for a, _ in alt_spans}:
        s -= 1
    while e not in {b for _, b in ref_spans} or e not in {b for _, b in alt_spans}:
        e += 1
    total = 0.0
    for sign, ids, spans in ((1, alt_ids, alt_spans), (-1, ref_ids, ref_spans)):
        for i, (a, b) in enumerate(spans):
            if a >= s and b <= e:
                masked = torch.tensor([[hf_tokenizer.cls_token_id] + ids])
                masked[0, 1 + i] = hf_tokenizer.mask_token_id
                with torch.no_grad():
                    total += sign * float(hf(input_ids=masked).logits[0, 1 + i].log_softmax(-1)[ids[i]])
    return total


def loop_loglik(hf_tokenizer, hf, seq: str) -> float:
    ids = torch.tensor([[hf_tokenizer.bos_token_id] + hf_tokenizer(seq, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = hf(input_ids=ids).logits[0, :-1].log_softmax(-1)
    return float(logp.gather(-1, ids[0, 1:, None]).sum())


def loop_scores(checkpoint, masked: bool, genome: str, positions, alts, window: int, k: int, bpe: bool) -> float:
    """Seconds for the straightforward loop over every variant and both strands."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from gpn import register_auto_classes

    register_auto_classes("ss")
    hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    hf = (AutoModelForMaskedLM if masked else AutoModelForCausalLM).from_pretrained(checkpoint,
                                                                                     local_files_only=True).eval()
    first = hf_tokenizer.cls_token_id if hf_tokenizer.cls_token_id is not None else hf_tokenizer.bos_token_id
    started = time.perf_counter()
    for pos, alt in zip(positions, alts):
        start = pos - window // 2
        ref_window = genome[start:start + window]
        rel = pos - start
        alt_window = ref_window[:rel] + alt + ref_window[rel + 1:]
        for reverse in (False, True):
            orient = reverse_complement if reverse else (lambda s: s)
            if bpe:
                r = len(ref_window) - 1 - rel if reverse else rel
                loop_pll(hf_tokenizer, hf, orient(ref_window), orient(alt_window), r)
            elif masked:
                r = len(ref_window) - 1 - rel if reverse else rel
                loop_llr(hf_tokenizer, hf, orient(ref_window), r, orient(genome[pos]), orient(alt), k, first)
            else:
                loop_loglik(hf_tokenizer, hf, orient(alt_window)) - loop_loglik(hf_tokenizer, hf, orient(ref_window))
    return time.perf_counter() - started


def loop_embed(checkpoint, masked: bool, regions: list[str]) -> float:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    hf = (AutoModelForMaskedLM if masked else AutoModelForCausalLM).from_pretrained(checkpoint,
                                                                                     local_files_only=True).eval()
    started = time.perf_counter()
    for seq in regions:
        ids = torch.tensor([hf_tokenizer(seq)["input_ids"]])
        with torch.no_grad():
            if hf.config.model_type in ("ConvNet", "GPN"):  # GPN: its encoder's last state
                hf.model(input_ids=ids).last_hidden_state.mean(1)
            else:
                hf(input_ids=ids, output_hidden_states=True).hidden_states[-1].mean(1)
    return time.perf_counter() - started


def ms_per_region_by_batch(checkpoint, masked: bool, length: int, batches=(1, 8, 32)) -> list[float]:
    """The checkpoint alone (no tokenizer, no genofm), `length` random tokens per region, no
    padding: milliseconds per region of one forward pass at each batch size (best of 3, after
    one). Flat figures mean the model is compute-bound per token, so batching saves only per-call
    overhead."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    hf = (AutoModelForMaskedLM if masked else AutoModelForCausalLM).from_pretrained(checkpoint,
                                                                                     local_files_only=True).eval()
    generator = torch.Generator().manual_seed(0)
    low = min(8, hf.config.vocab_size - 1)  # past most special tokens; any real token costs the same
    figures = []
    for batch in batches:
        ids = torch.randint(low, hf.config.vocab_size, (batch, length), generator=generator)
        best = float("inf")
        with torch.no_grad():
            hf(input_ids=ids)  # builds the shape's kernels
            for _ in range(3):
                started = time.perf_counter()
                hf(input_ids=ids)
                best = min(best, time.perf_counter() - started)
        figures.append(1000 * best / batch)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=200)
    parser.add_argument("--regions", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--window", type=int, default=255, help="scoring window in tokens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scan-tokens", type=int, default=400, help="region length of the batch-size scan")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    genome = args.genome = "".join(rng.choice(list("ACGT"), 40_000))
    regions = ["".join(rng.choice(list("ACGT"), int(n))) for n in rng.integers(200, 500, args.regions)]
    rows, scans = [], []
    with tempfile.TemporaryDirectory() as tmp:
        fasta_path = Path(tmp) / "g.fa"
        fasta_path.write_text(">chr1\n" + genome + "\n")
        pysam.faidx(str(fasta_path))
        for name, (build, masked, window) in families(args).items():
            checkpoint = build(Path(tmp) / name.split()[0])
            model, tokenizer = load_model_and_tokenizer(checkpoint)
            positions = sorted(rng.choice(np.arange(window, len(genome) - window), args.variants, replace=False))
            alts = ["ACGT"[("ACGT".index(genome[p]) + 1 + int(rng.integers(3))) % 4] for p in positions]
            alleles = [Allele(record=i, chrom="chr1", pos=int(p), vcf_id=".", ref=genome[p], alt=a, ref_chrom="chr1")
                       for i, (p, a) in enumerate(zip(positions, alts))]
            # each way twice, alternating, the faster pass kept: the first pass of a shape pays for
            # building its kernels (oneDNN caches them), whichever way runs it first
            ours_score, theirs_score, ours_embed, theirs_embed = [], [], [], []
            for _ in range(2):
                with pysam.FastaFile(str(fasta_path)) as fasta:
                    scorer = VariantScorer(model, tokenizer, fasta, ScoringConfig(window=window, rc_average=True,
                                                                                   embedding=False))
                    started = time.perf_counter()
                    scorer.score([Allele(**{**vars(a), "scores": {}}) for a in alleles])
                    ours_score.append(time.perf_counter() - started)
                theirs_score.append(loop_scores(checkpoint, masked, genome, positions, alts, window, tokenizer.k,
                                                "BPE" in name))
                started = time.perf_counter()
                Embedder(model, tokenizer, EmbedConfig()).embed_sequences(regions)
                ours_embed.append(time.perf_counter() - started)
                theirs_embed.append(loop_embed(checkpoint, masked, regions))
            ours_score, theirs_score, ours_embed, theirs_embed = map(min, (ours_score, theirs_score, ours_embed,
                                                                          theirs_embed))
            row = [name, f"{args.variants / ours_score:.0f}", f"{args.variants / theirs_score:.0f}",
                   f"{theirs_score / ours_score:.2f}x", f"{args.regions / ours_embed:.0f}",
                   f"{args.regions / theirs_embed:.0f}", f"{theirs_embed / ours_embed:.2f}x"]
            rows.append(row)
            print(f"{name}: variants/s genofm {row[1]}, loop {row[2]} ({row[3]}); "
                  f"regions/s genofm {row[4]}, loop {row[5]} ({row[6]})", flush=True)
            scan = ms_per_region_by_batch(checkpoint, masked, args.scan_tokens)
            scans.append(f"{name} {' / '.join(f'{ms:.1f}' for ms in scan)}")
            print(f"  the checkpoint alone, ms per region of {args.scan_tokens} tokens at batch 1 / 8 / 32: "
                  f"{' / '.join(f'{ms:.1f}' for ms in scan)}", flush=True)
    if args.markdown:
        write_markdown(args.markdown,
                       f"{args.variants} SNVs (both strands) and {args.regions} regions of 200-500 bp per family, "
                       f"random checkpoints of {args.layers} layers x {args.hidden}, {args.threads} threads.",
                       ["family", "variants/s genofm", "variants/s loop", "ratio", "regions/s genofm",
                        "regions/s loop", "ratio"], rows,
                       footer=f"The checkpoint alone, milliseconds per region of {args.scan_tokens} random tokens "
                              f"at batch 1 / 8 / 32 (no padding): {'; '.join(scans)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
