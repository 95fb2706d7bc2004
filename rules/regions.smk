# Region extraction: BED intervals, annotation features or a genome tiling, with sequences.


rule extract_regions:
    input:
        unpack(region_set_inputs),
    output:
        regions="results/{genome}/regions/{set}.parquet",
    log:
        "logs/{genome}/extract_regions_{set}.log",
    benchmark:
        "benchmarks/{genome}/extract_regions_{set}.tsv"
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=60,
    params:
        spec=lambda w: region_set(w.genome, w.set),
        rename=lambda w: genome_config(w.genome)["rename"],
        annotation_format=lambda w: (
            annotation_format(w.genome) if annotation_source(w.genome) else "auto"
        ),
    script:
        "../workflow_scripts/extract_regions.py"
