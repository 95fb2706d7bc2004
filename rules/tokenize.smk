# k-mer tokenization: token ids, per-region offsets, region index and tokenizer files.


rule tokenize:
    input:
        regions="results/{genome}/regions/{set}.parquet",
    output:
        tokens="results/{genome}/tokens/{set}/tokens.npy",
        offsets="results/{genome}/tokens/{set}/offsets.npy",
        index="results/{genome}/tokens/{set}/index.parquet",
        spec="results/{genome}/tokens/{set}/tokenizer_spec.json",
        vocab="results/{genome}/tokens/{set}/vocab.txt",
        hf_config="results/{genome}/tokens/{set}/tokenizer_config.json",
    log:
        "logs/{genome}/tokenize_{set}.log",
    benchmark:
        "benchmarks/{genome}/tokenize_{set}.tsv"
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=60,
    params:
        k=config["tokenizer"]["k"],
        overlapping=config["tokenizer"]["overlapping"],
    script:
        "../workflow_scripts/tokenize_regions.py"
