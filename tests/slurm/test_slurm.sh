#!/usr/bin/env bash
# The SLURM test: a single-node SLURM cluster on 127.0.0.1 (tests/slurm/slurm_cluster.sh) runs
# every stage of the demo (short pretraining, no fine-tuning) through
# `snakemake --profile profiles/slurm`, scoring in 3 shard jobs and embedding in 2; the same
# config runs locally beside it in one job each, and every rule log must name its SLURM job and
# every output must equal the local run's. Then a pretraining on 2 nodes (two tasks of the one node)
# must train as one process does (its one-process reference beside it), and a pretraining stopped
# at its time limit must resume (its reference after it: beside it, the job would not finish in
# its three attempts).
# Stops the daemons it started. .ci/run runs it after the test suite; as root on Debian it installs what it needs.
#
#   bash tests/slurm/test_slurm.sh        (GENOFM_VENV: the environment, default .venv)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${GENOFM_VENV:-$REPO/.venv}
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
WORK=$(mktemp -d "${TMPDIR:-/tmp}/genofm-slurm.XXXXXX")
source "$REPO/tests/slurm/slurm_cluster.sh"
local_pid=
trap '[ -z "$local_pid" ] || kill -- -"$local_pid" 2>/dev/null || true; slurm_cluster_stop "$WORK/cluster"' EXIT
# a node of twice the machine's cores: the demo's jobs spend much of their time starting Python
# and waiting for the executor's status checks, so four run side by side in the time of two
slurm_cluster_start "$WORK/cluster" $(($(nproc) * 2))

copy_workflow() {  # copy_workflow RUN...: the workflow's files into $WORK/RUN for each run
    local run name
    for run in "$@"; do
        mkdir -p "$WORK/$run"
        for name in Snakefile rules workflow_scripts config envs profiles report; do
            cp -r "$REPO/$name" "$WORK/$run/"
        done
    done
}

"$VENV/bin/python" "$REPO/tests/slurm/slurm_run.py" config "$WORK/config.yaml" "$WORK/config_sharded.yaml"
copy_workflow slurm local
run_local() {  # run_local RUN CONFIG [TARGET]: the workflow in $WORK/RUN without SLURM, in the background
    # in its own process group, so that the EXIT trap stops all of it when the test fails first
    setsid bash -c 'cd "$1" && PATH="$2/bin:$PATH" exec snakemake ${4:+"$4"} --cores 2 --configfile "$3"' \
        _ "$WORK/$1" "$VENV" "$2" "${3:-}" > "$WORK/$1.out" 2>&1 &
    local_pid=$!
}
wait_local() {  # wait_local RUN: the background run of run_local must succeed
    wait "$local_pid" || { tail -n 60 "$WORK/$1.out"; exit 1; }
}

echo "slurm test: running the workflow through profiles/slurm in $WORK/slurm (and without SLURM beside it)"
started=$SECONDS
run_local local "$WORK/config.yaml"  # the reference run shares the cores, so the two take less time than one after the other
(cd "$WORK/slurm" && PATH="$VENV/bin:$PATH" snakemake --profile profiles/slurm --configfile "$WORK/config_sharded.yaml" \
    --jobs 6 --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 5 \
    > "$WORK/slurm.out" 2>&1) || { tail -n 60 "$WORK/slurm.out"; exit 1; }
echo "slurm test: SLURM run done in $((SECONDS - started)) s; submitted jobs: $(grep -c 'has been submitted with SLURM jobid' "$WORK/slurm.out" || true) ($(grep -c 'rule score_variants_shard:\|rule embed_shard:' "$WORK/slurm.out" || true) shard jobs)"
wait_local local
"$VENV/bin/python" "$REPO/tests/slurm/slurm_run.py" check "$WORK/slurm" "$WORK/local"
rm -rf "$WORK/slurm" "$WORK/local"

echo "slurm test: pretraining on 2 nodes (2 tasks of the one test node): srun, torchrun agents, c10d rendezvous"
"$VENV/bin/python" "$REPO/tests/slurm/slurm_run.py" nodes-config "$WORK/nodes.yaml" "$WORK/one.yaml"
model=results/models/demo_mlm/model.safetensors
copy_workflow nodes_slurm nodes_local
run_local nodes_local "$WORK/one.yaml" "$model"
(cd "$WORK/nodes_slurm" && PATH="$VENV/bin:$PATH" snakemake "$model" --profile profiles/slurm \
    --configfile "$WORK/nodes.yaml" --set-resources pretrain:nodes=1 --slurm-init-seconds-before-status-checks 5 \
    --seconds-between-status-checks 5 > "$WORK/nodes_slurm.out" 2>&1) || { tail -n 60 "$WORK/nodes_slurm.out"; exit 1; }
wait_local nodes_local
"$VENV/bin/python" "$REPO/tests/slurm/slurm_run.py" check-nodes "$WORK/nodes_slurm" "$WORK/nodes_local"
rm -rf "$WORK/nodes_slurm" "$WORK/nodes_local"

echo "slurm test: a pretraining job longer than its 1-minute runtime: stopped, retried with more time, resumed"
"$VENV/bin/python" "$REPO/tests/slurm/slurm_run.py" resume-config "$WORK/resume.yaml"
copy_workflow resume_slurm resume_local
(cd "$WORK/resume_slurm" && PATH="$VENV/bin:$PATH" snakemake "$model" --profile profiles/slurm \
    --configfile "$WORK/resume.yaml" --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 5 \
    > "$WORK/resume_slurm.out" 2>&1) || { tail -n 60 "$WORK/resume_slurm.out"; exit 1; }
(cd "$WORK/resume_local" && PATH="$VENV/bin:$PATH" snakemake "$model" --cores 2 --configfile "$WORK/resume.yaml" \
    > "$WORK/resume_local.out" 2>&1) || { tail -n 60 "$WORK/resume_local.out"; exit 1; }
"$VENV/bin/python" "$REPO/tests/slurm/slurm_run.py" check-resume "$WORK/resume_slurm" "$WORK/resume_local" \
    "$WORK/resume_slurm.out"
rm -rf "$WORK/resume_slurm" "$WORK/resume_local"
