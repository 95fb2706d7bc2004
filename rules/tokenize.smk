# Tokenization: token ids, per-region offsets, region index and tokenizer files. k-mers by
# default; with tokenizer.type bpe, a BPE vocabulary learnt first (rule train_tokenizer).


rule train_tokenizer:
    input:
        regions=bpe_train_regions(),
    output:
        tokenizer=BPE_TOKENIZER,
    log:
        "logs/tokenizer/train_tokenizer.log",
    benchmark:
        "benchmarks/tokenizer/train_tokenizer.tsv"
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=lambda w, attempt: 8000 * attempt,
        runtime=120,
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
        min_frequency=config["tokenizer"]["min_frequency"],
    script:
        "../workflow_scripts/train_tokenizer.py"


rule tokenize:
    input:
        unpack(tokenize_inputs),
    output:
        **({"bpe": "results/{genome}/tokens/{set}/tokenizer.json"} if is_bpe() else {}),
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
        "../envs/model.yaml" if is_bpe() else "../envs/genome.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=60,
    params:
        type=config["tokenizer"]["type"],
        k=config["tokenizer"]["k"],
        overlapping=config["tokenizer"]["overlapping"],
    script:
        "../workflow_scripts/tokenize_regions.py"
