# Pretraining: a DNA language model on the token sets of one or more genomes.


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
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
        gpu=lambda w: model_resources(w.model)["gpus"],
    params:
        spec=lambda w: pretrain_spec(w.model),
        out="results/models/{model}",
        checkpoints="results/models/{model}/checkpoints",
    script:
        "../workflow_scripts/pretrain.py"
