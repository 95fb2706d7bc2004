"""How a pretraining job starts its training processes.

One process trains in the job itself; several on one node run under torchrun (standalone);
over several nodes, one SLURM job of N tasks runs `srun`, which starts one torchrun agent per
task (per node), and the agents meet at a c10d rendezvous on the job's batch host. Every
process trains on its share of each step's micro-batches, so the result equals one process at
the same batch_size whatever the layout (genofm.pretrain).
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass

from .errors import GenofmInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """Where the training processes run: `nodes` torchrun agents of `processes` each."""

    nodes: int
    processes: int  # per node
    gpus: int  # per node; 0: the CPU
    threads: int  # CPU threads per node, split between its processes

    @property
    def world(self) -> int:
        return self.nodes * self.processes

    @property
    def threads_per_process(self) -> int:
        return max(1, self.threads // self.processes)


@dataclass(frozen=True)
class SlurmJob:
    """What SLURM gave the job (scontrol): the multi-node launch must fit it."""

    job_id: str
    nodes: int
    tasks: int
    batch_host: str


def launch_command(layout: Layout, script_args: list[str], model: str, job_id: str) -> list[str]:
    """The command that starts the `layout.world` (> 1) processes running `script_args`."""
    if layout.nodes == 1:
        return torchrun_command(layout, script_args)
    job = slurm_job(job_id, model, layout)
    rendezvous = f"{job.batch_host}:{free_port()}"
    log.info("%d nodes x %d process(es): srun starts a torchrun agent per node in SLURM job %s (%d node(s)); "
             "rendezvous at %s", layout.nodes, layout.processes, job.job_id, job.nodes, rendezvous)
    return srun_command(layout, job, torchrun_command(layout, script_args, rendezvous, job.job_id))


def torchrun_command(layout: Layout, script_args: list[str], rendezvous: str | None = None,
                     job_id: str = "") -> list[str]:
    """`python -m torch.distributed.run ... SCRIPT_ARGS`: standalone on one node, or one agent
    of a c10d rendezvous at `rendezvous` (host:port) when there are several."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(layout.processes)]
    if layout.nodes == 1:
        command.append("--standalone")
    else:
        command += ["--nnodes", str(layout.nodes), "--rdzv_backend", "c10d", "--rdzv_endpoint", rendezvous,
                    "--rdzv_id", f"genofm-{job_id}"]
    return command + script_args


def srun_command(layout: Layout, job: SlurmJob, torchrun: list[str]) -> list[str]:
    """One torchrun agent per task of the job's allocation; a failed agent stops the others."""
    command = ["srun", f"--jobid={job.job_id}", f"--nodes={job.nodes}", f"--ntasks={layout.nodes}",
               f"--cpus-per-task={layout.threads}", "--kill-on-bad-exit=1", "--export=ALL"]
    if layout.gpus:
        command.append(f"--gres=gpu:{layout.gpus}")
    return command + torchrun


def slurm_job(job_id: str, model: str, layout: Layout) -> SlurmJob:
    """The job's allocation, checked against the layout the model's resources ask for."""
    if not job_id:
        raise GenofmInputError(
            f"model {model!r}: resources.nodes is {layout.nodes}, and a multi-node pretraining runs as one "
            f"SLURM job (snakemake --profile profiles/slurm); this job is not one (no SLURM_JOB_ID). Set "
            f"resources.nodes: 1 to train on one machine")
    if shutil.which("scontrol") is None:
        raise GenofmInputError(f"model {model!r}: resources.nodes is {layout.nodes}, but scontrol (SLURM) "
                               f"is not on the PATH of job {job_id}")
    shown = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True)
    if shown.returncode:
        raise GenofmInputError(f"model {model!r}: scontrol show job {job_id} failed: {shown.stderr.strip()}")
    job = parse_scontrol_job(job_id, shown.stdout)
    if job.tasks < layout.nodes:
        raise GenofmInputError(
            f"model {model!r}: resources.nodes is {layout.nodes} (one torchrun agent per node), but SLURM job "
            f"{job_id} has {job.tasks} task(s) on {job.nodes} node(s). The pretrain rule asks for "
            f"--nodes={layout.nodes} --ntasks={layout.nodes}: a profile's set-resources for pretrain must keep "
            f"tasks equal to resources.nodes")
    return job


def parse_scontrol_job(job_id: str, text: str) -> SlurmJob:
    fields = dict(re.findall(r"(\w+)=(\S*)", text))
    try:
        return SlurmJob(job_id, int(fields["NumNodes"].split("-")[0]), int(fields["NumTasks"]),
                        fields.get("BatchHost") or socket.gethostname())
    except (KeyError, ValueError) as err:
        raise GenofmInputError(f"scontrol show job {job_id}: no NumNodes / NumTasks in {text.strip()!r}") from err


def free_port() -> int:
    """A port free on this host now, for the rendezvous store (the agent here hosts it)."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]
