"""Pretraining: masked-LM or next-token training of a DNALM on token sets of one or more
genomes, single-process or under torchrun (DistributedDataParallel).

AdamW with linear warmup and cosine decay, gradient clipping and accumulation, bf16 autocast
on CUDA (fp32 on CPU), periodic validation (loss, perplexity, token accuracy) and resumable
checkpoints. A batch depends only on (seed, step, micro-batch), and checkpoints hold the
optimizer state exactly, so a killed and resumed run ends with the weights of an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .atomic import atomic_path
from .config import TrainConfig, run_settings
from .alignment import AlignedColumns
from .data import (IGNORE, aligned_windows, check_single_bases, draw_windows, load_pool, mask_for_mlm,
                   next_token_labels, reverse_complement_aligned, reverse_complement_tokens, unigram_entropy,
                   window_tokens)
from .devices import bf16_autocast, torch_device
from .errors import GenofmInputError
from .model import DNALM, ModelConfig
from .tokenizer import PAD
from .transfer import InitFrom, check_fits, initialise_from, load_source

log = logging.getLogger(__name__)


@dataclass
class DataSpec:
    """Token set directories per genome, with the genome's sampling weight."""

    genome: str
    train: list[str]
    valid: list[str]
    weight: float = 1.0
    set_weights: list[float] | None = None  # one per train set: relative draws per token (None: all 1)
    alignment: str = ""  # alignment-aware models: the genome's alignment arrays (genofm.alignment)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def _seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs and platforms."""
    digest = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class Distributed:
    """torchrun's environment, or a single process; on the CPU, or one GPU per process."""

    def __init__(self, gpus: int = 0):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch_device(gpus, "the model's resources.gpus", self.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float) -> float:
        """The mean of `value` over the processes (each trains on its own share of a step)."""
        if self.world == 1:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(total)
        return float(total) / self.world

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def close(self):
        if self.world > 1:
            torch.distributed.destroy_process_group()


# --- checkpoints --------------------------------------------------------------------------

def fingerprint(model_cfg: ModelConfig, train_cfg: TrainConfig, data: list[DataSpec],
                init_from: dict | None = None) -> str:
    """What a checkpoint must match to be resumed (logging cadence may change). init_from: the
    source model's name and weights' sha256, for a run that started from another model."""
    train = result_training(train_cfg)
    # an empty alignment and unweighted sets are left out: checkpoints from before they existed
    # still resume
    specs = [{k: v for k, v in asdict(d).items() if k not in ("alignment", "set_weights") or v} for d in data]
    identity = {"model": _architecture(model_cfg), "train": train, "data": specs}
    if init_from:  # absent otherwise: runs from scratch keep their fingerprint
        identity["init_from"] = {"model": init_from["model"], "sha256": init_from["sha256"]}
    blob = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _architecture(model_cfg: ModelConfig) -> dict:
    """The model config without `extra` (provenance may differ between code versions) nor an
    empty `aligned_species` (as before alignments existed)."""
    return {k: v for k, v in asdict(model_cfg).items() if k != "extra" and (k != "aligned_species" or v)}


def save_checkpoint(directory: Path, step: int, model: DNALM, optimizer, state: dict, keep: int = 2) -> None:
    """checkpoint/step-NNNNNNN/{state.safetensors,state.json}, written into a temporary
    folder and renamed, so a kill at any moment leaves only complete checkpoints."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()
               if k != "head.weight" or not model.cfg.tie_embeddings}
    opt = optimizer.state_dict()
    for pid, pstate in opt["state"].items():
        for key, value in pstate.items():
            tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
    final = directory / f"step-{step:07d}"
    tmp = directory / f".step-{step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "param_groups": opt["param_groups"]}))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(directory.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(directory: Path, model: DNALM, optimizer, expected_fingerprint: str,
                    model_cfg: ModelConfig) -> dict | None:
    """Restore the newest checkpoint in `directory`; None when there is none."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    candidates = sorted(p for p in directory.glob("step-*") if (p / "state.json").exists())
    if not candidates:
        return None
    path = candidates[-1]
    try:
        state = json.loads((path / "state.json").read_text())
        tensors = load_file(str(path / "state.safetensors"))
    except (OSError, json.JSONDecodeError, SafetensorError) as err:
        raise GenofmInputError(f"{path}: corrupt checkpoint ({err}); delete {directory} to start over") from err
    stale = state.get("model_config") != _architecture(model_cfg) or state.get("fingerprint") != expected_fingerprint
    if state.get("complete") and stale:  # a finished run of other settings: nothing of this run to keep
        log.info("%s: the final checkpoint of a finished run with other settings: removed", path)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        return None
    if state.get("model_config") != _architecture(model_cfg):
        raise GenofmInputError(f"{path}: the checkpoint is of a different model config "
                               f"({state.get('model_config')}); delete {directory} to start over")
    if state.get("fingerprint") != expected_fingerprint:
        raise GenofmInputError(f"{path}: the checkpoint was written with other training settings or data; "
                               f"delete {directory} to start over")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if model.cfg.tie_embeddings:
        model_state["head.weight"] = model_state["embed.weight"]
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as err:
        raise GenofmInputError(f"{path}: checkpoint weights do not fit the model: {err}") from err
    opt_state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    log.info("resumed from %s (step %d)", path, state["step"])
    return state


# --- the loop -----------------------------------------------------------------------------

@dataclass
class Alignments:
    """What an alignment-aware model reads beside the tokens: each pool's alignment arrays and
    the species whose aligned bases are its input."""

    arrays: list[AlignedColumns]
    species: list[str]


def micro_batch(pools, weights, tokenizer, train_cfg: TrainConfig, seq_len: int, step: int, index: int,
                alignments: Alignments | None = None):
    """Inputs, labels and aligned codes (None without alignments) of micro-batch `index` of
    optimizer step `step` (deterministic)."""
    rng = np.random.default_rng(_seed(train_cfg.seed, step, index))
    draws = draw_windows(pools, weights, train_cfg.micro_batch_size, seq_len, rng)
    ids = window_tokens(pools, draws, seq_len)
    aligned = None if alignments is None else aligned_windows(pools, draws, seq_len, alignments.arrays,
                                                              alignments.species)
    if train_cfg.rc_augment:
        flip = rng.random(ids.shape[0]) < 0.5
        if aligned is not None:
            aligned[flip] = reverse_complement_aligned(aligned[flip], ids[flip])
        ids[flip] = reverse_complement_tokens(ids[flip], tokenizer)
    aligned = None if aligned is None else torch.from_numpy(aligned)
    ids = torch.from_numpy(ids)
    if train_cfg.objective == "clm":
        return (*next_token_labels(ids), aligned)
    generator = torch.Generator().manual_seed(_seed(train_cfg.seed, step, index, 1))
    return (*mask_for_mlm(ids, tokenizer, train_cfg.mask_prob, generator), aligned)


def labelled_logits(model, inputs, labels, device, aligned=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, V) and targets (N,) of the N labelled positions; logits are computed only
    where there is a label."""
    labels = labels.to(device)
    counted = labels != IGNORE
    aligned = None if aligned is None else aligned.to(device)
    with bf16_autocast(device):
        logits = model(inputs.to(device), logits_at=counted, aligned=aligned).logits  # (N, V)
    return logits.float(), labels[counted]


@torch.no_grad()
def evaluate(model, batches, device) -> dict:
    model.eval()
    total, count, hits = 0.0, 0, 0
    for inputs, labels, aligned in batches:
        logits, targets = labelled_logits(model, inputs, labels, device, aligned)
        total += float(F.cross_entropy(logits, targets, reduction="sum"))
        count += int(targets.numel())
        hits += int((logits.argmax(-1) == targets).sum())
    model.train()
    mean = total / max(count, 1)
    return {"val_loss": mean, "val_ppl": math.exp(min(mean, 50)), "val_acc": hits / max(count, 1)}


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, data: list[DataSpec], out_dir: str | Path,
          checkpoint_dir: str | Path, provenance: dict | None = None, gpus: int = 0, threads: int = 0,
          init_from: InitFrom | None = None) -> dict:
    """Train, write model.safetensors + config.json + metrics.tsv + summary.json (+ plot) to
    out_dir (rank 0), checkpoints to checkpoint_dir; returns the summary. gpus 0 trains on the
    CPU, else each process on a GPU of its own (bf16 autocast); threads: CPU threads of each
    process (0: torch's default). Neither changes the result. init_from: start from that
    model's weights instead of a random initialisation (genofm.transfer)."""
    if threads:
        torch.set_num_threads(threads)
    run = TrainingRun(model_cfg, train_cfg, data, Path(out_dir), Path(checkpoint_dir), provenance or {},
                      Distributed(gpus), init_from)
    try:
        return _train(run)
    finally:
        run.dist.close()


@dataclass
class TrainingRun:
    """What one train() call works on: the settings, the data, where it writes, its processes."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    data: list[DataSpec]
    out_dir: Path
    checkpoint_dir: Path
    provenance: dict
    dist: Distributed
    init_from: InitFrom | None = None


def result_training(train_cfg: TrainConfig) -> dict:
    """The training settings a model depends on (not logging or checkpoint cadence): what its
    config.json records and what a checkpoint must match to be resumed."""
    settings = asdict(train_cfg)
    return {k: v for k, v in settings.items() if k not in run_settings(TrainConfig, settings)}


def _train(run: TrainingRun) -> dict:
    model_cfg, train_cfg, data, dist = run.model_cfg, run.train_cfg, run.data, run.dist
    # Tiny gradients and Adam moments early in training are denormal floats, which x86 CPUs
    # process ~5x slower; flushing them to zero changes nothing measurable in the result.
    torch.set_flush_denormal(True)
    n_micro = train_cfg.batch_size // train_cfg.micro_batch_size
    if n_micro * train_cfg.micro_batch_size != train_cfg.batch_size or n_micro % dist.world:
        raise GenofmInputError(f"batch_size ({train_cfg.batch_size}) must be a multiple of micro_batch_size "
                               f"({train_cfg.micro_batch_size}) times the number of processes ({dist.world})")
    loaded = [load_pool(d.genome, d.train, set_weights=d.set_weights) for d in data]
    pools, tokenizer = [p for p, _ in loaded], loaded[0][1]
    for (_, tok), d in zip(loaded, data):
        if tok.spec != tokenizer.spec:
            raise GenofmInputError(f"genome {d.genome!r} was tokenized differently ({tok.spec}) from {data[0].genome!r}")
    if model_cfg.vocab_size != tokenizer.vocab_size:
        raise GenofmInputError(f"model vocab_size {model_cfg.vocab_size} differs from the tokenizer's {tokenizer.vocab_size}")
    model_cfg.causal = train_cfg.objective == "clm"
    model_cfg.extra = {**model_cfg.extra, "tokenizer": asdict(tokenizer.spec), "objective": train_cfg.objective,
                       "training": result_training(train_cfg), "provenance": run.provenance}
    weights = np.array([d.weight for d in data], dtype=float)
    valid = [load_pool(d.genome, d.valid)[0] for d in data if d.valid]
    alignments = valid_alignments = None
    if model_cfg.aligned_species:
        if train_cfg.objective != "mlm" or any(not d.alignment for d in data):
            raise GenofmInputError("an alignment-aware model trains as a masked LM (objective mlm) on genomes "
                                   "with an alignment")
        for pool in pools + valid:
            check_single_bases(pool, tokenizer)
        arrays = [AlignedColumns(d.alignment) for d in data]
        alignments = Alignments(arrays, model_cfg.aligned_species)
        valid_alignments = Alignments([a for a, d in zip(arrays, data) if d.valid], model_cfg.aligned_species)
        model_cfg.extra = {**model_cfg.extra, "alignment_reference": [a.reference for a in arrays]}
    valid_weights = np.array([d.weight for d in data if d.valid], dtype=float)
    seq_len = model_cfg.max_len
    entropy = unigram_entropy(pools, weights, tokenizer)
    source = None
    if run.init_from:  # checked before anything is written
        source = load_source(run.init_from)
        check_fits(source, model_cfg, asdict(tokenizer.spec))
        model_cfg.extra = {**model_cfg.extra, "init_from": source.record}

    torch.manual_seed(train_cfg.seed)
    model = DNALM(model_cfg).to(dist.device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": train_cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=train_cfg.lr, betas=(train_cfg.beta1, train_cfg.beta2))
    print_ = log.info if dist.main else (lambda *a, **k: None)
    fp = fingerprint(model_cfg, train_cfg, data, source.record if source else None)
    checkpoint_dir = run.checkpoint_dir
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(checkpoint_dir, model, optimizer, fp, model_cfg)
    start = state["step"] if state else 0
    if source and not state:  # a resumed run goes on from its checkpoint, not from the source again
        initialise_from(model, source)
        print_("initialised from %r (sha256 %s)", run.init_from.model, source.record["sha256"][:12])
    if state and state.get("processes", dist.world) != dist.world:
        # a batch depends on (seed, step, micro-batch) only: another layout goes on with the same data
        print_("the checkpoint was written by %d process(es), resumed by %d: the same batches, only float "
               "rounding differs", state["processes"], dist.world)
    rows: list[dict] = state["metrics"] if state else []
    print_("model: %s parameters, %d layers, d_model %d, %s, %s; objective %s; %d process(es) on %s",
           f"{model.num_parameters():,}", model_cfg.n_layers, model_cfg.d_model, model_cfg.position,
           model_cfg.ffn, train_cfg.objective, dist.world, dist.device)
    print_("training tokens: %s in %d genome(s); unigram entropy %.4f nats (the loss of a context-free model)",
           f"{sum(p.n_tokens for p in pools):,}", len(pools), entropy)

    ddp = (torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
           if dist.world > 1 else model)
    valid_batches = []
    if valid:
        for i in range(max(1, train_cfg.eval_windows // train_cfg.micro_batch_size)):
            valid_batches.append(micro_batch(valid, valid_weights, tokenizer,
                                             TrainConfig(**{**asdict(train_cfg), "rc_augment": False}),
                                             seq_len, step=-1, index=i, alignments=valid_alignments))
    mine = [i for i in range(n_micro) if i % dist.world == dist.rank]
    started, tokens_seen, losses_since_row, losses_since_line = time.perf_counter(), 0, [], []
    model.train()
    for step in range(start, train_cfg.max_steps):
        lr = lr_at(step, train_cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum, step_tokens = 0.0, 0
        for j, index in enumerate(mine):
            inputs, labels, aligned = micro_batch(pools, weights, tokenizer, train_cfg, seq_len, step, index,
                                                  alignments)
            torch.manual_seed(_seed(train_cfg.seed, step, index, 2))  # dropout
            last = j == len(mine) - 1
            sync = ddp.no_sync() if (dist.world > 1 and not last) else _nullcontext()
            with sync:
                logits, targets = labelled_logits(ddp, inputs, labels, dist.device, aligned)
                loss, counted = F.cross_entropy(logits, targets, reduction="sum"), max(int(targets.numel()), 1)
                (loss / counted / len(mine)).backward()
            loss_sum += float(loss.detach()) / counted / len(mine)
            step_tokens += int((inputs != PAD).sum())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += step_tokens * dist.world
        losses_since_row.append(loss_sum)
        losses_since_line.append(loss_sum)
        done = step + 1
        evaluated = done % train_cfg.eval_every == 0 or done == train_cfg.max_steps
        elapsed = time.perf_counter() - started
        rate = tokens_seen / max(elapsed, 1e-9)
        # metrics.tsv (a result) gets a row every metrics_every steps and at each evaluation;
        # the log a progress line every log_every steps (not a result: changing it reruns nothing)
        if done % train_cfg.metrics_every == 0 or evaluated:
            row = {"step": done, "train_loss": dist.mean(float(np.mean(losses_since_row))), "val_loss": math.nan,
                   "val_ppl": math.nan, "val_acc": math.nan, "lr": lr, "grad_norm": grad_norm,
                   "tokens_per_s": rate, "unigram_entropy": entropy}
            losses_since_row = []
            if valid_batches and evaluated and dist.main:
                row.update(evaluate(model, valid_batches, dist.device))
            rows.append(row)
            if not math.isnan(row["val_loss"]):
                print_("step %d: val loss %.4f  val acc %.3f", done, row["val_loss"], row["val_acc"])
        if done % train_cfg.log_every == 0 or done == train_cfg.max_steps:
            eta = elapsed / max(done - start, 1) * (train_cfg.max_steps - done)
            print_("step %d/%d  loss %.4f  lr %.2e  %.0f tokens/s  ETA %s", done, train_cfg.max_steps,
                   float(np.mean(losses_since_line)), lr, rate, _hms(eta))
            losses_since_line = []
        if done % train_cfg.checkpoint_every == 0 and done < train_cfg.max_steps:
            if dist.main:
                save_checkpoint(checkpoint_dir, done, model, optimizer,
                                {"fingerprint": fp, "model_config": _architecture(model_cfg), "metrics": rows,
                                 "processes": dist.world})
            dist.barrier()
    summary = {}
    if dist.main:
        # the final state first, then the outputs: a job stopped before the workflow has taken
        # them (its time limit) rewrites them from here instead of training again
        if start < train_cfg.max_steps:
            save_checkpoint(checkpoint_dir, train_cfg.max_steps, model, optimizer,
                            {"fingerprint": fp, "model_config": _architecture(model_cfg), "metrics": rows,
                             "processes": dist.world, "complete": True}, keep=1)
        summary = _write_outputs(run, model, tokenizer, rows, entropy, time.perf_counter() - started)
    dist.barrier()
    return summary


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def hardware(dist) -> str:
    """What trained the model, e.g. "1 x NVIDIA H100" or "1 x Intel(R) Xeon(R) ... (2 threads)"."""
    if dist.device.type == "cuda":
        return f"{dist.world} x {torch.cuda.get_device_name(dist.device)}"
    name = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{dist.world} x {name} ({torch.get_num_threads()} threads)"


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


METRIC_COLUMNS = ["step", "train_loss", "val_loss", "val_ppl", "val_acc", "lr", "grad_norm", "tokens_per_s",
                  "unigram_entropy"]


def _write_outputs(run: TrainingRun, model: DNALM, tokenizer, rows: list[dict], entropy: float,
                   seconds: float) -> dict:
    import pandas as pd

    from .plots import plot_loss

    out_dir = run.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.safetensors") as tmp_weights:
        model.save_pretrained(tmp_weights.parent)  # writes model.safetensors + config.json there
        os.replace(tmp_weights.parent / "config.json", out_dir / "config.json")
    tokenizer.save(out_dir)
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    with atomic_path(out_dir / "metrics.tsv") as tmp:
        metrics.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(out_dir / "loss.png") as tmp:
        plot_loss(metrics, entropy, tmp)
    last_val = metrics["val_loss"].dropna()
    summary = {
        "parameters": model.num_parameters(), "steps": run.train_cfg.max_steps, "seconds": round(seconds, 1),
        "unigram_entropy": entropy, "final_train_loss": float(metrics["train_loss"].iloc[-1]) if len(metrics) else None,
        "final_val_loss": float(last_val.iloc[-1]) if len(last_val) else None,
        "hardware": hardware(run.dist),
        "torch": torch.__version__, "model_config": asdict(run.model_cfg), "train_config": asdict(run.train_cfg),
        "data": [asdict(d) for d in run.data], **run.provenance,
    }
    if "init_from" in run.model_cfg.extra:
        summary["init_from"] = run.model_cfg.extra["init_from"]
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info("final: train loss %.4f, val loss %s (unigram entropy %.4f); wrote %s", summary["final_train_loss"] or math.nan,
             f"{summary['final_val_loss']:.4f}" if summary["final_val_loss"] is not None else "n/a", entropy, out_dir)
    return summary
