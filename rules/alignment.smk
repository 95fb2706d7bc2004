# Whole-genome alignments: a genome's MAF as per-contig arrays on its coordinates.


rule download_alignment:
    input:
        local=lambda w: local_source(alignment_source(w.genome)),
    output:
        maf="resources/{genome}/alignment.maf.gz",
    log:
        "logs/{genome}/download_alignment.log",
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=1000,
        runtime=240,
    params:
        source=lambda w: alignment_source(w.genome),
        checksum=lambda w: genome_config(w.genome)["alignment"]["checksum"],
    script:
        "../workflow_scripts/download_gzipped.py"


rule alignment_arrays:
    input:
        maf="resources/{genome}/alignment.maf.gz",
        fasta="resources/{genome}/genome.fa.gz",
        fai="resources/{genome}/genome.fa.gz.fai",
    output:
        arrays=directory("results/{genome}/alignment"),
    log:
        "logs/{genome}/alignment_arrays.log",
    benchmark:
        "benchmarks/{genome}/alignment_arrays.tsv"
    conda:
        "../envs/genome.yaml"
    resources:
        # streams the MAF into memory-mapped arrays: memory does not grow with the alignment
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    params:
        reference_species=lambda w: genome_config(w.genome)["alignment"][
            "reference_species"
        ],
        species=lambda w: genome_config(w.genome)["alignment"]["species"],
    script:
        "../workflow_scripts/alignment_arrays.py"
