# Probes: classifiers on embeddings beside a k-mer frequency baseline, cross-validated.


rule probe:
    input:
        matrix=lambda w: embeddings_of(w.task)[0],
        index=lambda w: embeddings_of(w.task)[1],
        regions=lambda w: regions_of(w.task),
    output:
        metrics="results/{genome}/probes/{model}/{task}/metrics.json",
        predictions="results/{genome}/probes/{model}/{task}/predictions.tsv",
        summary="results/{genome}/probes/{model}/{task}/summary.tsv",
        plot=report(
            "results/{genome}/probes/{model}/{task}/roc.png",
            caption="../report/probe_roc.rst",
            category="3. Embeddings and probes",
            subcategory="{task}",
        ),
    log:
        "logs/{genome}/probe_{model}_{task}.log",
    benchmark:
        "benchmarks/{genome}/probe_{model}_{task}.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=30,
    params:
        probe=lambda w: probe_config(w.task),
    script:
        "../workflow_scripts/probe.py"


rule probe_summary:
    input:
        lambda w: all_probe_outputs("summary"),
    output:
        table=report(
            "results/probes_summary.tsv",
            caption="../report/probe_summary.rst",
            category="3. Embeddings and probes",
        ),
    log:
        "logs/probe_summary.log",
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/probe_summary.py"


rule finetune:
    input:
        model=lambda w: model_file(w.model),
        regions=lambda w: regions_of(w.task),
        alignment=lambda w: model_alignment(w.model, w.genome),
    output:
        metrics="results/{genome}/finetune/{model}/{task}/metrics.json",
        summary="results/{genome}/finetune/{model}/{task}/summary.tsv",
        model_dir=directory("results/{genome}/finetune/{model}/{task}/model"),
    log:
        "logs/{genome}/finetune_{model}_{task}.log",
    benchmark:
        "benchmarks/{genome}/finetune_{model}_{task}.tsv"
    conda:
        "../envs/model.yaml"
    threads: lambda w: finetune_resources(w.task)["threads"]
    resources:
        mem_mb=lambda w, attempt: finetune_resources(w.task)["mem_mb"] * attempt,
        runtime=lambda w: finetune_resources(w.task)["runtime"],
        gpu=lambda w: finetune_resources(w.task)["gpus"],
    params:
        probe=lambda w: fold_config(w.task),
        finetune=lambda w: finetune_config(w.task),
        model_dir=lambda w, input: os.path.dirname(input.model),
    script:
        "../workflow_scripts/finetune.py"
