"""Helpers of the SLURM test (tests/slurm/test_slurm.sh).

    python tests/slurm/slurm_run.py config OUT.yaml SHARDED.yaml
        the demo config, made cheap; and the same with scoring and embedding in shards
    python tests/slurm/slurm_run.py check SLURM_DIR LOCAL_DIR
        every rule log says which SLURM job ran it, and every output equals the local run's (the
        two runs from scratch, one sharded, are the suite's determinism check: byte for byte, the
        timings of metrics.tsv and speed.tsv aside)
    python tests/slurm/slurm_run.py resume-config OUT.yaml
        the demo model alone, longer than its 1-minute runtime
    python tests/slurm/slurm_run.py check-resume SLURM_DIR LOCAL_DIR SLURM_OUT
        SLURM stopped the job at its time limit, the retry resumed from a checkpoint, and the
        weights equal an uninterrupted local run's
    python tests/slurm/slurm_run.py nodes-config NODES.yaml ONE.yaml
        the demo model on 2 nodes of 1 process each; and on one process
    python tests/slurm/slurm_run.py check-nodes NODES_DIR ONE_DIR
        the job started 2 torchrun agents under srun that trained as one world of 2, and the
        weights equal the one process's (up to float rounding)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from genofm.workflow import MEASURED_OUTPUTS

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from conftest import cheaper_probes_and_scoring  # noqa: E402  (tests/)


def write_config(out: Path, sharded: Path) -> None:
    """The demo config with a short pretraining, smaller probes and attribution, and no fine-tuning:
    every stage, in minutes; and
    the same with the call set scored in 3 shard jobs and the region sets embedded in 2, whose
    joined files must be the one-job files of the other run."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for model in ("demo_mlm", "demo_conv"):
        config["models"][model]["training"].update(max_steps=30, eval_every=10, checkpoint_every=10,
                                                   metrics_every=10, log_every=10, eval_windows=32)
    cheaper_probes_and_scoring(config)
    config["probes"]["promoters"]["finetune"]["method"] = "none"
    config["variants"]["demo_variants"]["finetuned_heads"] = []  # no fine-tune to score with
    config["variant_scoring"]["chunk_records"] = 200  # 530 records: 3 chunks
    config["embeddings"]["chunk_regions"] = 100  # 646 probe regions: 7 chunks
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    config["variants"]["demo_variants"]["shards"] = 3
    config["embeddings"]["shards"] = 2
    sharded.write_text(yaml.safe_dump(config, sort_keys=False))


def training_steps_per_second(model: dict, tokenizer: dict) -> float:
    """The model's training steps a second on this machine: forward, backward and AdamW on random
    tokens of its batch shape with its threads (the best of 3 timings of 4 steps, after 2). The
    workflow's steps cost more (batches drawn, evaluation, checkpoints)."""
    import time

    import torch

    from genofm.model import DNALM, ModelConfig
    from genofm.tokenizer import KmerTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(model["resources"]["threads"])
    vocab_size = KmerTokenizer(k=tokenizer["k"], overlapping=tokenizer["overlapping"]).vocab_size
    net = DNALM(ModelConfig(**model["architecture"], vocab_size=vocab_size))
    optimizer = torch.optim.AdamW(net.parameters())
    ids = torch.randint(5, net.cfg.vocab_size, (model["training"]["micro_batch_size"], net.cfg.max_len))

    def step():
        logits = net(ids).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(4):
            step()
        best = min(best, (time.perf_counter() - started) / 4)
    return 1 / best


def write_resume_config(out: Path) -> None:
    """demo_mlm with as many steps as this machine trains in about 100 s (at least 250; a checkpoint
    every 20): over its 1-minute runtime with the job's start on any CPU, yet short, since the
    check trains it twice. SLURM stops it, the workflow's retry (with 2, then 3 minutes) resumes
    it."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    model = config["models"]["demo_mlm"]
    rate = training_steps_per_second(model, config["tokenizer"])
    steps = max(250, -(-int(100 * rate) // 20) * 20)
    print(f"slurm test: demo_mlm trains {rate:.1f} steps/s here (random tokens): {steps} steps, "
          "over its 1-minute limit")
    model["training"].update(max_steps=steps, eval_every=steps, checkpoint_every=20, metrics_every=20,
                             log_every=20)
    model["resources"]["runtime"] = 1
    out.write_text(yaml.safe_dump(config, sort_keys=False))


def write_nodes_configs(nodes: Path, one: Path) -> None:
    """demo_mlm for 40 steps of 2 micro-batches: on 2 nodes x 1 process (the test runs the job
    as 2 tasks on its one node, acting as 2 nodes) and on 1 process."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    model = config["models"]["demo_mlm"]
    model["training"].update(max_steps=40, micro_batch_size=16, eval_every=20, checkpoint_every=20,
                             metrics_every=10, log_every=10, eval_windows=32)
    model["resources"].update(threads=1)
    one.write_text(yaml.safe_dump(config, sort_keys=False))
    model["resources"].update(nodes=2, processes=1)
    nodes.write_text(yaml.safe_dump(config, sort_keys=False))


def check_nodes(nodes_dir: Path, one_dir: Path) -> None:
    import torch

    from genofm.model import DNALM

    problems = []
    log = (nodes_dir / "logs/models/demo_mlm/pretrain.log").read_text()
    started = re.search(r"2 nodes x 1 process\(es\): srun starts a torchrun agent per node in SLURM job (\d+)", log)
    if not started:
        problems.append("the pretraining log does not say srun started 2 torchrun agents")
    if "2 process(es)" not in log:
        problems.append("the training did not run as a world of 2 processes")
    directory = "results/models/demo_mlm"
    worst = 0.0
    if not problems:
        ours, theirs = (DNALM.from_pretrained(d / directory).state_dict() for d in (nodes_dir, one_dir))
        for name, tensor in theirs.items():
            worst = max(worst, float((ours[name] - tensor).abs().max()))
            if not torch.allclose(ours[name], tensor, atol=2e-5, rtol=1e-4):
                problems.append(f"{name} of the 2-node model differs from the one-process model's")
    print(f"slurm test: 2 torchrun agents in SLURM job {started.group(1) if started else '-'} trained demo_mlm; "
          f"largest weight difference from one process {worst:.2e}")
    if problems:
        print("slurm test: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)


def check_resume(slurm_dir: Path, local_dir: Path, slurm_out: Path) -> None:
    problems = []
    log = (slurm_dir / "logs/models/demo_mlm/pretrain.log").read_text()
    resumed = re.findall(r"resumed from .* \(step (\d+)\)", log)
    if not resumed or int(resumed[-1]) == 0:
        problems.append("the last attempt's log says no resume from a checkpoint")
    out = slurm_out.read_text()
    if "rule pretrain" not in out or not re.search(r"Error in rule pretrain|Trying to restart job", out):
        problems.append("the pretraining job did not fail and retry: it was never stopped at its time limit?")
    weights = "results/models/demo_mlm/model.safetensors"
    if (slurm_dir / weights).read_bytes() != (local_dir / weights).read_bytes():
        problems.append("the resumed model's weights differ from the uninterrupted local run's")
    print(f"slurm test: pretraining stopped at its 1-minute limit, resumed from step "
          f"{resumed[-1] if resumed else '-'}; weights {'differ' if problems else 'equal the uninterrupted run'}")
    if problems:
        print("slurm test: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)


def measured_outputs_differ(slurm_dir: Path, local_dir: Path) -> list[str]:
    """metrics.tsv records speed and speed.tsv times: everything else in them must be equal."""
    import pandas as pd

    untimed = {"results/models/demo_mlm/metrics.tsv": lambda table: table.drop(columns="tokens_per_s"),
               "results/demo/comparisons/demo_variants/speed.tsv": lambda table: table[["model", "alleles"]]}
    return [f"{rel} differs between the SLURM and the local run beyond its timings"
            for rel, untimed_part in untimed.items()
            if not untimed_part(pd.read_csv(slurm_dir / rel, sep="\t")).equals(
                untimed_part(pd.read_csv(local_dir / rel, sep="\t")))]


def check(slurm_dir: Path, local_dir: Path) -> None:
    problems = []
    logs = sorted(p for p in (slurm_dir / "logs").rglob("*.log") if "slurm" not in p.relative_to(slurm_dir).parts[1:2])
    job_ids = {}
    for log in logs:
        match = re.search(r"SLURM job (\d+) on ", log.read_text())
        if match:
            job_ids[log.relative_to(slurm_dir)] = match.group(1)
        else:
            problems.append(f"{log.relative_to(slurm_dir)} does not say it ran as a SLURM job")
    if len(logs) < 10:
        problems.append(f"only {len(logs)} rule logs: did the workflow run?")
    if len(set(job_ids.values())) != len(job_ids):
        problems.append("rule logs share SLURM job ids: jobs were not submitted one by one")
    outputs = sorted(p.relative_to(local_dir) for top in ("resources", "results")
                     for p in (local_dir / top).rglob("*") if p.is_file())
    compared = 0
    for rel in outputs:
        theirs = slurm_dir / rel
        if not theirs.exists():
            problems.append(f"{rel} is missing from the SLURM run")
        elif rel.name not in MEASURED_OUTPUTS:
            compared += 1
            if theirs.read_bytes() != (local_dir / rel).read_bytes():
                problems.append(f"{rel} differs between the SLURM and the local run")
    problems += measured_outputs_differ(slurm_dir, local_dir)
    print(f"slurm test: {len(job_ids)} rule logs with their SLURM job id "
          f"(jobs {min(job_ids.values(), key=int, default='-')}..{max(job_ids.values(), key=int, default='-')}); "
          f"{compared} outputs byte-identical to the local run")
    if problems:
        print("slurm test: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)
    print("slurm test: passed")


if __name__ == "__main__":
    if sys.argv[1] == "config":
        write_config(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "resume-config":
        write_resume_config(Path(sys.argv[2]))
    elif sys.argv[1] == "nodes-config":
        write_nodes_configs(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "check-nodes":
        check_nodes(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "check-resume":
        check_resume(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        check(Path(sys.argv[2]), Path(sys.argv[3]))
