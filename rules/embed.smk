# Embedding extraction: one vector per region of a region set, from a trained model.


rule embed:
    input:
        model=lambda w: model_file(w.model),
        regions="results/{genome}/regions/{set}.parquet",
    output:
        matrix="results/{genome}/embeddings/{model}/{set}.npy",
        index="results/{genome}/embeddings/{model}/{set}.index.parquet",
    log:
        "logs/{genome}/embed_{model}_{set}.log",
    benchmark:
        "benchmarks/{genome}/embed_{model}_{set}.tsv"
    conda:
        "../envs/model.yaml"
    threads: config["embeddings"]["resources"]["threads"]
    resources:
        mem_mb=lambda w, attempt: config["embeddings"]["resources"]["mem_mb"] * attempt,
        runtime=config["embeddings"]["resources"]["runtime"],
        gpu=config["embeddings"]["resources"]["gpus"],
    params:
        embedding=embed_config(),
    script:
        "../workflow_scripts/embed.py"
