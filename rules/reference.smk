# Reference download: the only rules that touch the network.


rule download_reference:
    input:
        local=lambda w: local_source(genome_config(w.genome)["source"]),
    output:
        fasta="resources/{genome}/genome.fa.gz",
        fai="resources/{genome}/genome.fa.gz.fai",
        gzi="resources/{genome}/genome.fa.gz.gzi",
        contigs=report(
            "resources/{genome}/contigs.tsv",
            caption="../report/contigs.rst",
            category="1. Reference",
            subcategory="{genome}",
        ),
    log:
        "logs/{genome}/download_reference.log",
    benchmark:
        "benchmarks/{genome}/download_reference.tsv"
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        source=lambda w: genome_config(w.genome)["source"],
        checksum=lambda w: genome_config(w.genome)["checksum"],
        contigs=lambda w: genome_config(w.genome)["contigs"],
        rename=lambda w: genome_config(w.genome)["rename"],
        soft_mask=lambda w: genome_config(w.genome)["soft_mask"],
        ambiguous_bases=lambda w: genome_config(w.genome)["ambiguous_bases"],
    script:
        "../workflow_scripts/download_reference.py"


rule download_annotation:
    input:
        local=lambda w: local_source(annotation_source(w.genome)),
    output:
        annotation="resources/{genome}/annotation.{format}.gz",
    log:
        "logs/{genome}/download_annotation_{format}.log",
    wildcard_constraints:
        format="gtf|gff3",
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        source=lambda w: annotation_source(w.genome),
        checksum=lambda w: genome_config(w.genome)["annotation"]["checksum"],
    script:
        "../workflow_scripts/download_gzipped.py"
