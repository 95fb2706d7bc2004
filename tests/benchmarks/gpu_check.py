"""GPU check: the CUDA paths of pretraining, embedding and variant scoring, on a GPU node.

    python tests/benchmarks/gpu_check.py [--workdir DIR] [--cores N]

1. Runs the demo through snakemake with `gpus: 1` for pretraining, embedding, fine-tuning and
   scoring (bf16 autocast), and beside it the same model trained on the CPU (`demo_mlm_cpu`)
   and the same fine-tuning on the CPU (task `promoters_cpu`).
2. Compares the two devices: the final validation loss of the GPU- and the CPU-trained
   model; the fine-tuned AUROCs; and, for the GPU-trained weights, the variant scores and
   embeddings the workflow computed on the GPU against the same computed here on the CPU.
3. Times training steps of the two shipped recipes (the demo's 6-mer transformer, masked LM;
   the M. tuberculosis 1-mer convolutional model, next-token) on the GPU and the CPU.

Prints the figures; exits 1 when a check fails. Needs a CUDA build of torch and one GPU
(several GPUs under torchrun are not covered: their NCCL path needs one GPU per process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from genofm.embed import EmbedConfig, embed_regions  # noqa: E402
from genofm.model import DNALM, ModelConfig  # noqa: E402
from genofm.variant_scoring import ScoringConfig  # noqa: E402
from genofm.variants import CallsetConfig, ScoringInputs, ScoringOutputs, score_vcf  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from conftest import copy_workflow  # noqa: E402  (tests/)

FAILED: list[str] = []


def dataclass_keys(cls, settings: dict) -> dict:
    """The config keys that are fields of cls (gpus and figure settings are not)."""
    return {k: v for k, v in settings.items() if k in {f.name for f in fields(cls)}}


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAILED'}] {what}")
    if not ok:
        FAILED.append(what)


def run_demo(workdir: Path, cores: int) -> dict:
    copy_workflow(workdir)
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    # the check as first written: the 6-mer masked transformer, its probes and fine-tune
    config["tokenizer"]["k"] = 6
    config["probes"].pop("library", None)  # the check as first written: the promoter tasks
    for task in config["probes"].values():
        task["model"] = "demo_mlm"
    demo = config["models"]["demo_mlm"]
    config["models"]["demo_mlm_cpu"] = {**demo, "resources": {**demo["resources"], "gpus": 0, "threads": cores},
                                        "export_huggingface": False}
    demo["resources"]["gpus"] = 1
    config["embeddings"]["resources"] = {"gpus": 1}
    config["variant_scoring"]["resources"] = {"gpus": 1}
    config["probes"]["promoters_cpu"] = yaml.safe_load(yaml.safe_dump(config["probes"]["promoters"]))
    config["probes"]["promoters"]["finetune"]["resources"] = {"gpus": 1}
    (workdir / "gpu.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/models/demo_mlm/summary.json", "results/models/demo_mlm_cpu/summary.json",
               "results/demo/embeddings/demo_mlm/promoters_vs_background.npy",
               "results/demo/variants/demo_mlm/demo_variants.tsv",
               "results/demo/finetune/demo_mlm/promoters/metrics.json",
               "results/demo/finetune/demo_mlm/promoters_cpu/metrics.json"]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), *targets,
                           "--configfile", "gpu.yaml"], cwd=workdir, capture_output=True, text=True)
    print(f"snakemake: exit {proc.returncode} in {time.perf_counter() - started:.0f} s")
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-6000:])
        for log in sorted((workdir / "logs").rglob("*.log")):
            print(f"--- {log.relative_to(workdir)}\n{log.read_text()[-2000:]}")
        sys.exit(1)
    return config


def compare_training(workdir: Path) -> None:
    gpu = json.loads((workdir / "results/models/demo_mlm/summary.json").read_text())
    cpu = json.loads((workdir / "results/models/demo_mlm_cpu/summary.json").read_text())
    print(f"pretraining, demo model ({gpu['steps']} steps):")
    for name, s in (("GPU", gpu), ("CPU", cpu)):
        print(f"  {name}: {s['hardware']}, {s['seconds']:.1f} s, final val loss {s['final_val_loss']:.4f} "
              f"(unigram entropy {s['unigram_entropy']:.4f})")
    log = (workdir / "logs/models/demo_mlm/pretrain.log").read_text()
    check("on cuda" in log, "the GPU model trained on cuda (its log says so)")
    check("cuda" not in (workdir / "logs/models/demo_mlm_cpu/pretrain.log").read_text(),
          "the gpus: 0 model trained on the CPU although a GPU was visible")
    check(gpu["final_val_loss"] < gpu["unigram_entropy"] - 0.2, "the GPU model learned (val loss below the unigram entropy)")
    check(abs(gpu["final_val_loss"] - cpu["final_val_loss"]) < 0.1,
          f"bf16 GPU and fp32 CPU training end within 0.1 nats ({gpu['final_val_loss'] - cpu['final_val_loss']:+.4f})")


def compare_finetuning(workdir: Path) -> None:
    aurocs = {}
    for task in ("promoters", "promoters_cpu"):
        metrics = json.loads((workdir / f"results/demo/finetune/demo_mlm/{task}/metrics.json").read_text())
        aurocs[task] = metrics["results"][metrics["method"]]["auroc"]["mean"]
    seconds = {task: float(pd.read_csv(workdir / f"benchmarks/demo/finetune_demo_mlm_{task}.tsv", sep="\t")["s"][0])
               for task in aurocs}
    print(f"fine-tuning ({metrics['method']}, 5 folds + the final model): GPU AUROC {aurocs['promoters']:.3f} "
          f"in {seconds['promoters']:.0f} s, CPU AUROC {aurocs['promoters_cpu']:.3f} in {seconds['promoters_cpu']:.0f} s")
    check("fine-tuning on cuda" in (workdir / "logs/demo/finetune_demo_mlm_promoters.log").read_text(),
          "the gpus: 1 fine-tuning ran on cuda (its log says so)")
    check(abs(aurocs["promoters"] - aurocs["promoters_cpu"]) < 0.05, "GPU and CPU fine-tuning AUROCs within 0.05")


def compare_scores(workdir: Path, config: dict) -> None:
    model_dir = workdir / "results/models/demo_mlm"
    fasta = workdir / "resources/demo/genome.fa.gz"
    vcf = workdir / config["variants"]["demo_variants"]["vcf"]
    on_gpu = pd.read_csv(workdir / "results/demo/variants/demo_mlm/demo_variants.tsv", sep="\t")
    scoring = dataclass_keys(ScoringConfig, config["variant_scoring"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        score_vcf(ScoringInputs(model_dir, fasta, vcf),
                  ScoringOutputs(tmp / "cpu.vcf.gz", tmp / "cpu.tsv", tmp / "cpu.json"),
                  ScoringConfig(**scoring), CallsetConfig(class_info_key="CLASS"), device="cpu")
        cpu_seconds = time.perf_counter() - started
        on_cpu = pd.read_csv(tmp / "cpu.tsv", sep="\t")
        started = time.perf_counter()
        score_vcf(ScoringInputs(model_dir, fasta, vcf),
                  ScoringOutputs(tmp / "gpu.vcf.gz", tmp / "gpu.tsv", tmp / "gpu.json"),
                  ScoringConfig(**scoring), CallsetConfig(class_info_key="CLASS"), device="cuda")
        gpu_seconds = time.perf_counter() - started
    print(f"variant scoring, {len(on_cpu)} records: CPU {cpu_seconds:.1f} s, GPU {gpu_seconds:.1f} s (in this process)")
    check(on_gpu["status"].tolist() == on_cpu["status"].tolist(), "same records scored on both devices")
    for column in ("llr", "emb_cosine"):
        both = pd.DataFrame({"gpu": on_gpu[column], "cpu": on_cpu[column]}).dropna()
        rho = both.corr(method="spearman").iloc[0, 1]
        spread = both["cpu"].abs().max()
        diff = (both["gpu"] - both["cpu"]).abs().max()
        print(f"  {column}: Spearman {rho:.4f}, max |GPU - CPU| {diff:.4g} (max |CPU| {spread:.4g})")
        check(rho > 0.98, f"{column}: GPU (bf16) ranks the variants as the CPU does (Spearman > 0.98)")


def compare_embeddings(workdir: Path, config: dict) -> None:
    on_gpu = np.load(workdir / "results/demo/embeddings/demo_mlm/promoters_vs_background.npy").astype(np.float64)
    cfg = EmbedConfig(**dataclass_keys(EmbedConfig, config["embeddings"]))
    with tempfile.TemporaryDirectory() as tmp:
        embed_regions(workdir / "results/models/demo_mlm", workdir / "results/demo/regions/promoters_vs_background.parquet",
                      Path(tmp) / "e.npy", Path(tmp) / "e.parquet", cfg, device="cpu")
        on_cpu = np.load(Path(tmp) / "e.npy").astype(np.float64)
    cosine = (on_gpu * on_cpu).sum(1) / np.linalg.norm(on_gpu, axis=1) / np.linalg.norm(on_cpu, axis=1)
    print(f"embeddings, {len(on_cpu)} regions: cosine(GPU, CPU) min {cosine.min():.5f}, median {np.median(cosine):.5f}")
    check(on_gpu.shape == on_cpu.shape and cosine.min() > 0.99, "GPU (bf16) embeddings match the CPU's (cosine > 0.99)")


def step_time(cfg: ModelConfig, batch: int, device: str, steps: int, masked: bool) -> float:
    torch.manual_seed(0)
    model = DNALM(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(6, cfg.vocab_size, (batch, cfg.max_len), device=device)
    where = torch.rand(batch, cfg.max_len, device=device) < 0.15 if masked else None
    autocast = device == "cuda"

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            logits = model(ids, logits_at=where).logits
        target = ids[where] if masked else ids[:, 1:].reshape(-1)
        logits = logits if masked else logits[:, :-1].reshape(-1, logits.shape[-1])
        torch.nn.functional.cross_entropy(logits.float(), target).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if autocast:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if autocast:
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def training_speed(config: dict, cores: int) -> None:
    mtb = yaml.safe_load((REPO / "config/examples/mtb.yaml").read_text())["models"]["mtb_conv"]
    demo = config["models"]["demo_mlm"]
    recipes = [("demo: 6-mer transformer, masked LM", demo, 4107, True),
               ("mtb: 1-mer dilated conv, next-token", mtb, 11, False)]
    torch.set_num_threads(cores)
    print(f"training step, GPU bf16 against CPU fp32 ({cores} threads):")
    for name, model_cfg, vocab, masked in recipes:
        cfg = ModelConfig.from_dict({**model_cfg["architecture"], "vocab_size": vocab})
        cfg.causal = not masked
        batch = model_cfg["training"]["micro_batch_size"]
        gpu = step_time(cfg, batch, "cuda", 50, masked)
        cpu = step_time(cfg, batch, "cpu", 5, masked)
        steps = model_cfg["training"]["max_steps"]
        print(f"  {name}, {batch} x {cfg.max_len}: GPU {gpu * 1e3:.1f} ms, CPU {cpu * 1e3:.1f} ms a step "
              f"({cpu / gpu:.1f}x); its {steps} steps take {steps * gpu / 60:.1f} min on the GPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="where the demo runs (default: a temporary directory)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA GPU (a CPU build of torch, or no GPU on this node)")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, "
          f"{args.cores} CPU cores")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="genofm_gpu_check_"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = run_demo(workdir, args.cores)
    compare_training(workdir)
    compare_finetuning(workdir)
    compare_scores(workdir, config)
    compare_embeddings(workdir, config)
    training_speed(config, args.cores)
    print("all checks passed" if not FAILED else f"{len(FAILED)} check(s) FAILED")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
