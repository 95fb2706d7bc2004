# Probes: classifiers on embeddings beside a k-mer frequency baseline, cross-validated.


rule probe:
    input:
        matrix=lambda w: embeddings_of(w.task)[0],
        index=lambda w: embeddings_of(w.task)[1],
        regions=lambda w: regions_of(w.task),
        labels=lambda w: labels_of(w.task),
        model=lambda w: model_file(w.model),
    output:
        metrics="results/{genome}/probes/{model}/{task}/metrics.json",
        predictions="results/{genome}/probes/{model}/{task}/predictions.tsv",
        summary="results/{genome}/probes/{model}/{task}/summary.tsv",
        head_weights="results/{genome}/probes/{model}/{task}/head/head.safetensors",
        head_meta="results/{genome}/probes/{model}/{task}/head/head.json",
        plot=report(
            "results/{genome}/probes/{model}/{task}/performance.png",
            caption="../report/probe_performance.rst",
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
        labels_column=lambda w: probe_task(w.task)["labels"]["column"],
        region_set=lambda w: probe_task(w.task)["region_set"],
        embedding=embed_config(),
    script:
        "../workflow_scripts/probe.py"


rule predict:
    input:
        head_weights=lambda w: probe_head(w.task, "head.safetensors"),
        head_meta=lambda w: probe_head(w.task, "head.json"),
        matrix="results/{genome}/embeddings/{model}/{set}.npy",
        index="results/{genome}/embeddings/{model}/{set}.index.parquet",
        model=lambda w: model_file(w.model),
    output:
        table="results/{genome}/probes/{model}/{task}/predict/{set}.tsv",
    log:
        "logs/{genome}/predict_{model}_{task}_{set}.log",
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=15,
    params:
        embedding=embed_config(),
    script:
        "../workflow_scripts/predict.py"


rule predict_finetuned:
    input:
        finetuned=lambda w: finetuned_model(w.task),
        regions="results/{genome}/regions/{set}.parquet",
        model=lambda w: model_file(w.model),
    output:
        table="results/{genome}/finetune/{model}/{task}/predict/{set}.tsv",
    log:
        "logs/{genome}/predict_finetuned_{model}_{task}_{set}.log",
    benchmark:
        "benchmarks/{genome}/predict_finetuned_{model}_{task}_{set}.tsv"
    conda:
        "../envs/model.yaml"
    threads: lambda w: finetune_resources(w.task)["threads"]
    resources:
        mem_mb=lambda w, attempt: finetune_resources(w.task)["mem_mb"] * attempt,
        runtime=lambda w: finetune_resources(w.task)["runtime"],
        gpu=lambda w: finetune_resources(w.task)["gpus"],
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
    script:
        "../workflow_scripts/predict_finetuned.py"


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
        labels=lambda w: labels_of(w.task),
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
        labels_column=lambda w: probe_task(w.task)["labels"]["column"],
        model_dir=lambda w, input: os.path.dirname(input.model),
    script:
        "../workflow_scripts/finetune.py"


rule attribute:
    input:
        model=lambda w: model_file(w.model),
        regions=lambda w: regions_of(w.task),
        labels=lambda w: labels_of(w.task),
        head_weights=lambda w: attribution_head(w.task, "head.safetensors"),
        head_meta=lambda w: attribution_head(w.task, "head.json"),
        finetuned=lambda w: attribution_finetune(w.task),
    output:
        one_hot="results/{genome}/probes/{model}/{task}/attribution/one_hot.npy",
        hypothetical="results/{genome}/probes/{model}/{task}/attribution/hypothetical.npy",
        index="results/{genome}/probes/{model}/{task}/attribution/index.parquet",
        motifs=report(
            "results/{genome}/probes/{model}/{task}/attribution/motifs.tsv",
            caption="../report/attribution_motifs.rst",
            category="3. Embeddings and probes",
            subcategory="{task}",
        ),
        logos=report(
            "results/{genome}/probes/{model}/{task}/attribution/motifs.png",
            caption="../report/attribution_motifs.rst",
            category="3. Embeddings and probes",
            subcategory="{task}",
        ),
    log:
        "logs/{genome}/attribute_{model}_{task}.log",
    benchmark:
        "benchmarks/{genome}/attribute_{model}_{task}.tsv"
    conda:
        "../envs/model.yaml"
    threads: lambda w: attribution_config(w.task)["resources"]["threads"]
    resources:
        mem_mb=lambda w, attempt: attribution_config(w.task)["resources"]["mem_mb"]
        * attempt,
        runtime=lambda w: attribution_config(w.task)["resources"]["runtime"],
        gpu=lambda w: attribution_config(w.task)["resources"]["gpus"],
    params:
        labels_column=lambda w: probe_task(w.task)["labels"]["column"],
        task=lambda w: result_settings(
            AttributionTaskSettings, attribution_config(w.task)
        ),
    script:
        "../workflow_scripts/attribute.py"
