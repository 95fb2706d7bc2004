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
    threads: 2
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=60,
        gpu=config["embeddings"]["gpus"],
    params:
        embedding={k: v for k, v in config["embeddings"].items() if k != "gpus"},
    script:
        "../workflow_scripts/embed.py"
