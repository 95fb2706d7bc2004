# Pretraining: a DNA language model on the token sets of one or more genomes.


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        **({"bpe": "results/models/{model}/tokenizer.json"} if is_bpe() else {}),
        weights="results/models/{model}/model.safetensors",
        config="results/models/{model}/config.json",
        vocab="results/models/{model}/vocab.txt",
        metrics="results/models/{model}/metrics.tsv",
        summary=report(
            "results/models/{model}/summary.json",
            caption="../report/pretrain_summary.rst",
            category="2. Pretraining",
            subcategory="{model}",
        ),
        plot=report(
            "results/models/{model}/loss.png",
            caption="../report/pretrain_loss.rst",
            category="2. Pretraining",
            subcategory="{model}",
        ),
    log:
        "logs/models/{model}/pretrain.log",
    benchmark:
        "benchmarks/models/{model}/pretrain.tsv"
    conda:
        "../envs/model.yaml"
    threads: lambda w: model_resources(w.model)["threads"]
    resources:
        mem_mb=lambda w, attempt: model_resources(w.model)["mem_mb"] * attempt,
        # a job stopped at its time limit is retried with more time and resumes from its checkpoint
        runtime=lambda w, attempt: model_resources(w.model)["runtime"] * attempt,
        gpu=lambda w: None if multi_node(w.model) else model_resources(w.model)["gpus"],
        # over several nodes: one task per node (a torchrun agent, started by the job's srun),
        # the GPUs per node as gres; `mpi` tells the SLURM executor the job launches its own tasks
        nodes=lambda w: model_resources(w.model)["nodes"],
        tasks=lambda w: (
            model_resources(w.model)["nodes"] if multi_node(w.model) else None
        ),
        mpi=lambda w: "srun" if multi_node(w.model) else None,
        gres=lambda w: multi_node_gres(w.model),
        tasks_per_gpu=lambda w: 0 if multi_node_gres(w.model) else None,
    params:
        spec=lambda w: pretrain_spec(w.model),
        out="results/models/{model}",
        checkpoints="results/models/{model}/checkpoints",
    script:
        "../workflow_scripts/pretrain.py"
