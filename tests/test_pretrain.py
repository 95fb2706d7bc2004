"""Pretraining: objectives, determinism, kill-and-resume, DDP on CPU, multi-genome data,
bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from conftest import REPO
from genofm.config import ModelGenome
from genofm.data import (IGNORE, load_pool, mask_for_mlm, reverse_complement_tokens, sample_windows,
                         unigram_entropy)
from genofm.devices import torch_device
from genofm.errors import GenofmInputError
from genofm.launch import Layout, launch_command, parse_scontrol_job, srun_command
from genofm.model import DNALM, ModelConfig
from genofm.pretrain import DataSpec, TrainConfig, _architecture, fingerprint, lr_at, save_checkpoint, train
from genofm.tokenizer import CLS, MASK, PAD, KmerTokenizer
from genofm.tokens import tokenize_regions

SCRIPT = REPO / "workflow_scripts" / "pretrain.py"


def make_token_set(directory, n_regions, length, seed, k=3, units=None, mutation=0.03):
    """Token set of tandem repeats of one of 5 fixed 12-mer units (3% of bases mutated): the
    units are shared by every set, so a masked token is predictable from its neighbours."""
    units = np.random.default_rng(0).choice(list("ACGT"), (5, 12)) if units is None else units
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_regions):
        unit = units[rng.integers(len(units))]
        seq = np.resize(unit, length)
        mutate = rng.random(length) < mutation
        seq[mutate] = rng.choice(list("ACGT"), int(mutate.sum()))
        seqs.append("".join(seq))
    df = pd.DataFrame({"chrom": "c", "start": np.arange(n_regions) * length, "strand": "+",
                       "name": [f"r{i}" for i in range(n_regions)], "label": None, "sequence": seqs})
    df["end"] = df["start"] + length
    parquet = directory.parent / f"{directory.name}.parquet"
    pq.write_table(pa.Table.from_pandas(df[["chrom", "start", "end", "strand", "name", "label", "sequence"]],
                                        preserve_index=False), parquet)
    tokenize_regions(parquet, KmerTokenizer(k=k), directory)
    return str(directory)


@pytest.fixture(scope="module")
def token_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    return {"train": make_token_set(root / "train", 40, 600, 1), "valid": make_token_set(root / "valid", 10, 600, 2),
            "poly_t": make_token_set(root / "poly_t", 20, 300, 3, units=np.array([list("T" * 12)]),
                                      mutation=0.0)}


ARCH = dict(vocab_size=KmerTokenizer(k=3).vocab_size, max_len=32, n_layers=2, d_model=32, n_heads=2, d_ff=64)
TRAIN = dict(max_steps=24, batch_size=8, micro_batch_size=2, lr=3e-3, warmup_steps=4, eval_every=12,
             eval_windows=8, checkpoint_every=4, log_every=4, seed=7)


def spec_json(token_sets, **train_overrides):
    return json.dumps({"architecture": ARCH, "training": {**TRAIN, **train_overrides},
                       "data": [{"genome": "g", "train": [token_sets["train"]], "valid": [token_sets["valid"]]}]})


def run_script(spec, out, checkpoints, env_extra=None, launcher=(sys.executable,)):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([*launcher, str(SCRIPT), "--spec", spec, "--out", str(out), "--checkpoints",
                             str(checkpoints), "--threads", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def weights(directory):
    return (directory / "model.safetensors").read_bytes()


# --- objectives and data ------------------------------------------------------------------

def test_mlm_masking_follows_bert():
    tok = KmerTokenizer()
    ids = torch.randint(tok.kmer_offset, tok.vocab_size, (64, 512))
    ids[:, 0] = CLS
    ids[:, 400:] = PAD
    inputs, labels = mask_for_mlm(ids, tok, 0.15, torch.Generator().manual_seed(0))
    chosen = labels != IGNORE
    real = ids >= tok.kmer_offset
    assert not chosen[~real].any()  # never <cls> or padding
    assert abs(chosen.sum() / real.sum() - 0.15) < 0.01
    masked = (inputs == MASK) & chosen
    kept = (inputs == ids) & chosen
    assert abs(masked.sum() / chosen.sum() - 0.8) < 0.02
    assert 0.08 < kept.sum() / chosen.sum() < 0.12  # 10% kept (+ random draws of the same token)
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_windows_and_reverse_complement(token_sets):
    pool, tok = load_pool("g", [token_sets["train"]])
    rng = np.random.default_rng(0)
    windows = sample_windows([pool], np.array([1.0]), 16, 32, rng)
    assert windows.shape == (16, 32) and (windows[:, 0] == CLS).all() and (windows[:, 1:] >= tok.kmer_offset).all()
    seq = tok.decode(windows[0])
    rc = tok.decode(reverse_complement_tokens(windows[:1], tok)[0])
    assert rc == seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def test_two_genomes_sampled_by_weight(token_sets):
    pools = [load_pool("a", [token_sets["train"]])[0], load_pool("b", [token_sets["poly_t"]])[0]]
    windows = sample_windows(pools, np.array([3.0, 1.0]), 4000, 8, np.random.default_rng(1))
    ttt = KmerTokenizer(k=3).token_to_id["TTT"]
    from_b = (windows[:, 1:] == ttt).all(axis=1).mean()  # genome b is poly-T
    assert 0.2 < from_b < 0.3  # weight 1 of 4
    assert unigram_entropy(pools, np.array([1.0, 1.0]), KmerTokenizer(k=3)) > 0


def test_train_sets_sampled_by_set_weight(token_sets):
    """A set's weight scales how often its tokens are drawn, within one genome."""
    ttt = KmerTokenizer(k=3).token_to_id["TTT"]
    sets = [token_sets["train"], token_sets["poly_t"]]

    def poly_t_fraction(set_weights):
        pool, _ = load_pool("g", sets, set_weights=set_weights)
        windows = sample_windows([pool], np.array([1.0]), 4000, 8, np.random.default_rng(2))
        return (windows[:, 1:] == ttt).all(axis=1).mean(), pool

    plain, pool = poly_t_fraction(None)
    share = pool.lengths[pool.set_of_region == 1].sum() / pool.n_tokens  # poly-T's share of the tokens
    assert abs(plain - share) < 0.03
    weighted, _ = poly_t_fraction([1.0, 4.0])
    assert abs(weighted - 4 * share / (4 * share + 1 - share)) < 0.03 and weighted > plain + 0.2
    with pytest.raises(GenofmInputError, match="2 token sets need as many positive weights"):
        load_pool("g", sets, set_weights=[1.0])
    with pytest.raises(GenofmInputError, match="positive weights"):
        load_pool("g", sets, set_weights=[1.0, 0.0])


def test_set_weights_name_train_sets():
    assert ModelGenome(train_sets=["tiles", "promoters"], set_weights={"promoters": 10}).train_set_weights() == [1.0, 10.0]
    assert ModelGenome(train_sets=["tiles"]).train_set_weights() is None  # the default draw: params unchanged
    with pytest.raises(GenofmInputError, match=r"names \['exons'\], which are not among train_sets"):
        ModelGenome(train_sets=["tiles"], set_weights={"exons": 2.0})
    with pytest.raises(GenofmInputError, match="must be positive numbers"):
        ModelGenome(train_sets=["tiles"], set_weights={"tiles": -1})


def test_lr_schedule():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55) and lr_at(110, cfg) == pytest.approx(0.1)


# --- training runs ------------------------------------------------------------------------

def test_training_learns_and_same_seed_gives_same_weights(token_sets, tmp_path):
    data = [DataSpec("g", [token_sets["train"]], [token_sets["valid"]])]
    runs = []
    for name in ("a", "b"):
        summary = train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "max_steps": 60}), data, tmp_path / name,
                        tmp_path / f"ckpt_{name}")
        runs.append(summary)
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    metrics = pd.read_csv(tmp_path / "a" / "metrics.tsv", sep="\t")
    assert list(metrics.columns[:5]) == ["step", "train_loss", "val_loss", "val_ppl", "val_acc"]
    assert runs[0]["final_val_loss"] < runs[0]["unigram_entropy"] - 0.3  # it learned the repeats
    assert (tmp_path / "a" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    model = DNALM.from_pretrained(tmp_path / "a")
    assert model.cfg.extra["tokenizer"]["k"] == 3 and model.cfg.extra["objective"] == "mlm"
    other = train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "max_steps": 60, "seed": 8}), data,
                  tmp_path / "c", tmp_path / "ckpt_c")
    assert weights(tmp_path / "c") != weights(tmp_path / "a") and other["final_val_loss"] > 0


def test_next_token_objective(token_sets, tmp_path):
    data = [DataSpec("g", [token_sets["train"]], [token_sets["valid"]])]
    summary = train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "objective": "clm", "rc_augment": True}), data,
                    tmp_path / "clm", tmp_path / "ckpt")
    assert DNALM.from_pretrained(tmp_path / "clm").cfg.causal
    assert np.isfinite(summary["final_val_loss"])


def test_killed_run_resumes_to_identical_weights(token_sets, tmp_path):
    spec = spec_json(token_sets)
    finish(run_script(spec, tmp_path / "straight", tmp_path / "ckpt_straight"))
    proc = run_script(spec, tmp_path / "resumed", tmp_path / "ckpt_resumed")
    deadline = time.time() + 120
    while not list((tmp_path / "ckpt_resumed").glob("step-0000012")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    out = finish(run_script(spec, tmp_path / "resumed", tmp_path / "ckpt_resumed"))
    assert "resumed from" in out
    assert weights(tmp_path / "resumed") == weights(tmp_path / "straight")


def test_a_finished_run_keeps_its_final_state_and_other_settings_start_afresh(token_sets, tmp_path, caplog):
    """A job stopped after training but before the workflow took its outputs (its time limit)
    rewrites them from the final checkpoint without training; a finished run's checkpoint does
    not stop a run with other settings."""
    import logging

    data = [DataSpec("g", [token_sets["train"]], [token_sets["valid"]])]
    cfg = TrainConfig(**{**TRAIN, "max_steps": 12, "checkpoint_every": 4})
    train(ModelConfig(**ARCH), cfg, data, tmp_path / "first", tmp_path / "ckpt")
    assert [p.name for p in (tmp_path / "ckpt").glob("step-*")] == ["step-0000012"]  # only the final state
    with caplog.at_level(logging.INFO, logger="genofm.pretrain"):
        train(ModelConfig(**ARCH), cfg, data, tmp_path / "again", tmp_path / "ckpt")
    assert "resumed from" in caplog.text and "(step 12)" in caplog.text and "step 4/12" not in caplog.text
    assert weights(tmp_path / "again") == weights(tmp_path / "first")
    assert (tmp_path / "again" / "metrics.tsv").read_text() == (tmp_path / "first" / "metrics.tsv").read_text()
    other = TrainConfig(**{**TRAIN, "max_steps": 8, "checkpoint_every": 4})
    train(ModelConfig(**ARCH), other, data, tmp_path / "other", tmp_path / "ckpt")  # no "delete ... to start over"
    assert [p.name for p in (tmp_path / "ckpt").glob("step-*")] == ["step-0000008"]


def test_two_process_ddp_matches_single_process_and_resumes_in_one(token_sets, tmp_path):
    spec = spec_json(token_sets, max_steps=8, checkpoint_every=2)
    finish(run_script(spec, tmp_path / "single", tmp_path / "ckpt_single"))
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    out = finish(run_script(spec, tmp_path / "ddp", tmp_path / "ckpt_ddp", launcher=launcher), timeout=400)
    assert "2 process(es)" in out
    single = DNALM.from_pretrained(tmp_path / "single").state_dict()

    def assert_single_weights(directory):
        other = DNALM.from_pretrained(directory).state_dict()
        for name, tensor in single.items():
            torch.testing.assert_close(other[name], tensor, atol=2e-5, rtol=1e-4, msg=name)

    assert_single_weights(tmp_path / "ddp")
    # the training loss of both processes, not rank 0's share
    metrics = [pd.read_csv(tmp_path / run / "metrics.tsv", sep="\t") for run in ("single", "ddp")]
    np.testing.assert_allclose(metrics[1]["train_loss"], metrics[0]["train_loss"], rtol=1e-4)

    # stopped on 2 processes, retried on 1 (a smaller allocation): it goes on from the checkpoint
    proc = run_script(spec, tmp_path / "moved", tmp_path / "ckpt_moved", launcher=launcher)
    deadline = time.time() + 300
    while not (tmp_path / "ckpt_moved" / "step-0000002").exists() and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)  # as SLURM at the time limit: torchrun stops its workers
    proc.communicate(timeout=120)
    out = finish(run_script(spec, tmp_path / "moved", tmp_path / "ckpt_moved"))
    resumed = int(out.split("resumed from")[1].split("(step ")[1].split(")")[0])
    assert resumed < 8, "the 2-process run finished before it could be stopped"
    assert "written by 2 process(es), resumed by 1" in out
    assert_single_weights(tmp_path / "moved")


# --- several nodes: srun starts a torchrun agent per node ------------------------------------

FAKE_SRUN = """#!{python}
# srun in a job's allocation, as far as genofm uses it: --ntasks copies of the command
import os, subprocess, sys
args = sys.argv[1:]
options = [a for a in args[:next(i for i, a in enumerate(args) if not a.startswith("--"))]]
command = args[len(options):]
tasks = int(next(a.split("=")[1] for a in options if a.startswith("--ntasks=")))
procs = [subprocess.Popen(command, env={{**os.environ, "SLURM_PROCID": str(i)}}) for i in range(tasks)]
sys.exit(max(p.wait() for p in procs))
"""


def fake_slurm(tmp_path, monkeypatch, tasks):
    """srun and scontrol of a one-node job with `tasks` tasks, on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN.format(python=sys.executable))
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho 'JobId=77 JobName=x NumNodes=1 NumCPUs={tasks} "
                                      f"NumTasks={tasks} CPUs/Task=1 BatchHost=127.0.0.1'\n")
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_two_nodes_meet_at_a_rendezvous_and_train_as_one_process(token_sets, tmp_path, monkeypatch):
    """Two torchrun agents (two tasks acting as two nodes) started by srun meet at the c10d
    rendezvous on the batch host; the weights equal one process's at the same batch_size."""
    spec = spec_json(token_sets, max_steps=6)
    finish(run_script(spec, tmp_path / "single", tmp_path / "ckpt_single"))
    fake_slurm(tmp_path, monkeypatch, tasks=2)
    layout = Layout(nodes=2, processes=1, gpus=0, threads=1)
    command = launch_command(layout, [str(SCRIPT), "--spec", spec, "--out", str(tmp_path / "nodes"),
                                      "--checkpoints", str(tmp_path / "ckpt_nodes"), "--threads", "1"], "m", "77")
    assert command[:4] == ["srun", "--jobid=77", "--nodes=1", "--ntasks=2"]
    assert "--nnodes" in command and "c10d" in command and any(a.startswith("127.0.0.1:") for a in command)
    out = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 process(es)" in out.stdout + out.stderr
    single = DNALM.from_pretrained(tmp_path / "single").state_dict()
    nodes = DNALM.from_pretrained(tmp_path / "nodes").state_dict()
    for name, tensor in single.items():
        torch.testing.assert_close(nodes[name], tensor, atol=2e-5, rtol=1e-4, msg=name)


def test_several_nodes_need_a_slurm_job_of_as_many_tasks(tmp_path, monkeypatch):
    layout = Layout(nodes=2, processes=2, gpus=2, threads=8)
    with pytest.raises(GenofmInputError, match="resources.nodes is 2.*not one \\(no SLURM_JOB_ID\\)"):
        launch_command(layout, ["train.py"], "big", "")
    fake_slurm(tmp_path, monkeypatch, tasks=1)
    with pytest.raises(GenofmInputError, match="SLURM job 77 has 1 task\\(s\\) on 1 node\\(s\\)"):
        launch_command(layout, ["train.py"], "big", "77")
    with pytest.raises(GenofmInputError, match="no NumNodes / NumTasks"):
        parse_scontrol_job("5", "JobId=5 JobState=RUNNING")
    # one node: torchrun standalone, no SLURM needed; over nodes, the GPUs go per node (gres)
    assert "--standalone" in launch_command(Layout(1, 2, 0, 2), ["train.py"], "m", "")
    job = parse_scontrol_job("9", "JobId=9 NumNodes=2 NumCPUs=16 NumTasks=2 BatchHost=gpu01")
    assert srun_command(layout, job, ["torchrun"]) == [
        "srun", "--jobid=9", "--nodes=2", "--ntasks=2", "--cpus-per-task=8", "--kill-on-bad-exit=1",
        "--export=ALL", "--gres=gpu:2", "torchrun"]
    assert Layout(2, 2, 2, 8).world == 4 and Layout(2, 2, 2, 8).threads_per_process == 4


# --- devices ------------------------------------------------------------------------------

def test_the_device_follows_the_gpus_setting(token_sets, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert torch_device(0, "gpus") == torch.device("cpu")  # a visible GPU is not used unasked
    assert torch_device(1, "gpus") == torch.device("cuda:0")
    with pytest.raises(GenofmInputError, match="process 1 needs a GPU of its own, but 1 are visible"):
        torch_device(1, "gpus", local_rank=1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GenofmInputError, match=r"variant_scoring.gpus is 1, but torch .* sees no CUDA GPU.*Set it to 0"):
        torch_device(1, "variant_scoring.gpus")
    data = [DataSpec("g", [token_sets["train"]], [token_sets["valid"]])]
    with pytest.raises(GenofmInputError, match="the model's resources.gpus is 1"):
        train(ModelConfig(**ARCH), TrainConfig(**TRAIN), data, tmp_path / "o", tmp_path / "c", gpus=1)
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


# --- bad inputs ---------------------------------------------------------------------------

def test_bad_inputs(token_sets, tmp_path):
    data = [DataSpec("g", [token_sets["train"]], [token_sets["valid"]])]
    with pytest.raises(GenofmInputError, match="multiple of micro_batch_size"):
        train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "batch_size": 7}), data, tmp_path / "o", tmp_path / "c1")
    with pytest.raises(GenofmInputError, match="vocab_size 99 differs"):
        train(ModelConfig(**{**ARCH, "vocab_size": 99}), TrainConfig(**TRAIN), data, tmp_path / "o", tmp_path / "c2")
    with pytest.raises(GenofmInputError, match="unknown training config keys: lrr"):
        TrainConfig.from_dict({"lrr": 1})
    with pytest.raises(GenofmInputError, match="not a complete token set"):
        load_pool("g", [str(tmp_path / "nowhere")])
    # a checkpoint of another model config, of other training settings, then a corrupt one
    cfg = TrainConfig(**{**TRAIN, "max_steps": 8})
    model = DNALM(ModelConfig(**ARCH))
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "c3", 4, model, optimizer,
                    {"fingerprint": fingerprint(ModelConfig(**ARCH), cfg, data),
                     "model_config": _architecture(ModelConfig(**ARCH)), "metrics": []})
    with pytest.raises(GenofmInputError, match="different model config.*delete"):
        train(ModelConfig(**{**ARCH, "d_model": 64}), cfg, data, tmp_path / "o", tmp_path / "c3")
    with pytest.raises(GenofmInputError, match="other training settings or data"):
        train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "max_steps": 9}), data, tmp_path / "o", tmp_path / "c3")
    (tmp_path / "c3" / "step-0000004" / "state.safetensors").write_bytes(b"junk")
    with pytest.raises(GenofmInputError, match="corrupt checkpoint"):
        train(ModelConfig(**ARCH), cfg, data, tmp_path / "o", tmp_path / "c3")


def test_too_short_token_sets(tmp_path):
    directory = make_token_set(tmp_path / "short", 2, 3, 0)  # one single-base token per region... or less
    with pytest.raises(GenofmInputError, match="too few to train on"):
        load_pool("g", [directory], min_tokens=100)


# --- threads ------------------------------------------------------------------------------

def python_says(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_job_uses_the_threads_snakemake_gives_it():
    code = ("import numpy, torch\nfrom genofm.workflow import limit_threads\nlimit_threads(1)\n"
            "from threadpoolctl import threadpool_info\n"
            "print(torch.get_num_threads(), sorted({p['num_threads'] for p in threadpool_info()}))")
    assert python_says(code) == "1 [1]"


def test_openmp_spins_briefly_unless_the_user_chose():
    code = "import os, genofm; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    assert python_says(code) == "10000 None"
    assert python_says(code, OMP_WAIT_POLICY="ACTIVE") == "None ACTIVE"
    assert python_says(code, GOMP_SPINCOUNT="5") == "5 None"
