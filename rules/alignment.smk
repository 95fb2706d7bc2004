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


rule neutral_model:
    input:
        arrays="results/{genome}/alignment",
        maf="resources/{genome}/alignment.maf.gz",
        annotation=lambda w: annotation_path(w.genome),
        fasta="resources/{genome}/genome.fa.gz",
        fai="resources/{genome}/genome.fa.gz.fai",
    output:
        model="results/{genome}/conservation/neutral.mod",
        summary="results/{genome}/conservation/neutral.json",
    log:
        "logs/{genome}/neutral_model.log",
    benchmark:
        "benchmarks/{genome}/neutral_model.tsv"
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=lambda w, attempt: 120 * attempt,
    params:
        tree=lambda w: genome_config(w.genome)["alignment"]["tree"],
        sites=lambda w: genome_config(w.genome)["alignment"]["neutral_sites"],
        attribute=lambda w: genome_config(w.genome)["annotation"][
            "transcript_attribute"
        ],
        annotation_format=lambda w: annotation_format(w.genome),
        seed=config["seed"],
    script:
        "../workflow_scripts/neutral_model.py"
