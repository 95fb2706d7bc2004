# Embedding extraction: one vector per region of a region set, from a trained model.


rule embed_shard:
    input:
        model=lambda w: model_file(w.model),
        regions="results/{genome}/regions/{set}.parquet",
        alignment=lambda w: model_alignment(w.model, w.genome),
    output:
        matrix=temp(
            "results/{genome}/embeddings/{model}/{set}.shards/{shard}-of-{shards}.npy"
        ),
    log:
        "logs/{genome}/embed_{model}_{set}_{shard}-of-{shards}.log",
    benchmark:
        "benchmarks/{genome}/embed_{model}_{set}_{shard}-of-{shards}.tsv"
    conda:
        "../envs/model.yaml"
    threads: lambda w: 1 if embedding_shards() > 1 else config["embeddings"]["resources"]["threads"]
    resources:
        mem_mb=lambda w, attempt: (
            2000
            if embedding_shards() > 1
            else config["embeddings"]["resources"]["mem_mb"]
        )
        * attempt,
        runtime=lambda w: (
            60
            if embedding_shards() > 1
            else config["embeddings"]["resources"]["runtime"]
        ),
        gpu=lambda w: (
            0 if embedding_shards() > 1 else config["embeddings"]["resources"]["gpus"]
        ),
    params:
        embedding=embed_config(),
    script:
        "../workflow_scripts/embed.py"


rule embed:
    input:
        model=lambda w: model_file(w.model),
        regions="results/{genome}/regions/{set}.parquet",
        alignment=lambda w: model_alignment(w.model, w.genome),
        parts=embedding_parts,
    output:
        matrix="results/{genome}/embeddings/{model}/{set}.npy",
        index="results/{genome}/embeddings/{model}/{set}.index.parquet",
    log:
        "logs/{genome}/embed_{model}_{set}.log",
    benchmark:
        "benchmarks/{genome}/embed_{model}_{set}.tsv"
    conda:
        "../envs/model.yaml"
    threads: lambda w: 1 if embedding_shards() > 1 else config["embeddings"]["resources"]["threads"]
    resources:
        mem_mb=lambda w, attempt: (
            2000
            if embedding_shards() > 1
            else config["embeddings"]["resources"]["mem_mb"]
        )
        * attempt,
        runtime=lambda w: (
            60
            if embedding_shards() > 1
            else config["embeddings"]["resources"]["runtime"]
        ),
        gpu=lambda w: (
            0 if embedding_shards() > 1 else config["embeddings"]["resources"]["gpus"]
        ),
    params:
        embedding=embed_config(),
    script:
        "../workflow_scripts/embed.py"
