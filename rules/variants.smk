# Zero-shot variant scoring: every record of a VCF scored by a model, and the report figures.


rule labelled_snvs:
    input:
        unpack(labelled_snv_inputs),
    output:
        vcf="results/{genome}/labelled_snvs/{callset}.vcf",
    log:
        "logs/{genome}/labelled_snvs_{callset}.log",
    conda:
        "../envs/genome.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=30,
    params:
        spec=lambda w: callset_config(w.callset)["labelled_snvs"],
        transcript_attribute=lambda w: genome_config(w.genome)["annotation"][
            "transcript_attribute"
        ],
        annotation_format=lambda w: (
            annotation_format(w.genome) if annotation_source(w.genome) else ""
        ),
    script:
        "../workflow_scripts/labelled_snvs.py"


rule score_variants_shard:
    input:
        unpack(scoring_job_inputs),
        baseline_regions=baseline_regions,
    output:
        vcf=temp(
            "results/{genome}/variants/{model}/{callset}.shards/{shard}-of-{shards}.vcf"
        ),
        tsv=temp(
            "results/{genome}/variants/{model}/{callset}.shards/{shard}-of-{shards}.tsv"
        ),
        json=temp(
            "results/{genome}/variants/{model}/{callset}.shards/{shard}-of-{shards}.json"
        ),
    log:
        "logs/{genome}/score_variants_{model}_{callset}_{shard}-of-{shards}.log",
    benchmark:
        "benchmarks/{genome}/score_variants_{model}_{callset}_{shard}-of-{shards}.tsv"
    conda:
        "../envs/model.yaml"
    threads: config["variant_scoring"]["resources"]["threads"]
    resources:
        mem_mb=scoring_resource("mem_mb"),
        runtime=scoring_resource("runtime"),
        gpu=scoring_resource("gpu"),
    params:
        scoring=scoring_config(),
        callset=lambda w: callset_options(w.callset),
        model_dir=lambda w, input: os.path.dirname(input.model),
        markov_order=config["variant_scoring"]["markov_order"],
        heads=lambda w: callset_heads(w.callset, w.model),
        head_embedding=lambda w: (
            embed_config() if callset_heads(w.callset, w.model) else {}
        ),
        finetuned_heads=lambda w: callset_heads(w.callset, w.model, "finetuned_heads"),
    script:
        "../workflow_scripts/score_variants.py"


rule score_variants:
    input:
        unpack(scoring_inputs),
        baseline_regions=lambda w: (
            [] if callset_shards(w.callset) > 1 else baseline_regions(w)
        ),
    output:
        vcf="results/{genome}/variants/{model}/{callset}.vcf.gz",
        tbi="results/{genome}/variants/{model}/{callset}.vcf.gz.tbi",
        table="results/{genome}/variants/{model}/{callset}.tsv",
        summary="results/{genome}/variants/{model}/{callset}.summary.json",
    log:
        "logs/{genome}/score_variants_{model}_{callset}.log",
    benchmark:
        "benchmarks/{genome}/score_variants_{model}_{callset}.tsv"
    conda:
        "../envs/model.yaml"
    threads:
        lambda w: (
            1
            if callset_shards(w.callset) > 1
            else config["variant_scoring"]["resources"]["threads"]
        )
    resources:
        mem_mb=scoring_resource("mem_mb"),
        runtime=scoring_resource("runtime"),
        gpu=scoring_resource("gpu"),
    params:
        scoring=scoring_config(),
        callset=lambda w: callset_options(w.callset),
        model_dir=lambda w: os.path.dirname(model_file(w.model)),
        markov_order=config["variant_scoring"]["markov_order"],
        heads=lambda w: callset_heads(w.callset, w.model),
        head_embedding=lambda w: (
            embed_config() if callset_heads(w.callset, w.model) else {}
        ),
        finetuned_heads=lambda w: callset_heads(w.callset, w.model, "finetuned_heads"),
    script:
        "../workflow_scripts/score_variants.py"


rule variant_report:
    input:
        table="results/{genome}/variants/{model}/{callset}.tsv",
        model_summary=lambda w: (
            [] if is_imported(w.model) else f"results/models/{w.model}/summary.json"
        ),
    output:
        distributions=report(
            "results/{genome}/variants/{model}/{callset}/score_distributions.png",
            caption="../report/variant_distributions.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        aurocs=report(
            "results/{genome}/variants/{model}/{callset}/class_auroc.tsv",
            caption="../report/variant_class_auroc.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        findings=report(
            "results/{genome}/variants/{model}/{callset}/findings.tsv",
            caption="../report/variant_findings.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        auroc_plot=report(
            "results/{genome}/variants/{model}/{callset}/class_auroc.png",
            caption="../report/variant_class_auroc.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        along_genome=report(
            "results/{genome}/variants/{model}/{callset}/along_genome.png",
            caption="../report/variant_along_genome.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        top=report(
            "results/{genome}/variants/{model}/{callset}/top_variants.tsv",
            caption="../report/variant_top.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
    log:
        "logs/{genome}/variant_report_{model}_{callset}.log",
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=30,
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/variant_report.py"


rule variant_figures:
    input:
        unpack(callset_inputs),
        table="results/{genome}/variants/{model}/{callset}.tsv",
    output:
        ism=report(
            "results/{genome}/variants/{model}/{callset}/ism.png",
            caption="../report/variant_ism.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        ism_table="results/{genome}/variants/{model}/{callset}/ism.tsv",
        attention=report(
            "results/{genome}/variants/{model}/{callset}/attention.png",
            caption="../report/variant_attention.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
        attention_html=report(
            "results/{genome}/variants/{model}/{callset}/attention.html",
            caption="../report/variant_attention_html.rst",
            category="4. Variant scores",
            subcategory="{callset}",
        ),
    log:
        "logs/{genome}/variant_figures_{model}_{callset}.log",
    benchmark:
        "benchmarks/{genome}/variant_figures_{model}_{callset}.tsv"
    conda:
        "../envs/model.yaml"
    threads: config["variant_scoring"]["resources"]["threads"]
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=30,
        gpu=0,
    params:
        scoring=scoring_config(),
        figure_region=lambda w: callset_config(w.callset)["figure_region"],
        figure_tokens=config["variant_scoring"]["figure_tokens"],
        model_dir=lambda w, input: os.path.dirname(input.model),
    script:
        "../workflow_scripts/variant_figures.py"


rule compare_models:
    input:
        tables=compared_files(".tsv"),
        summaries=compared_files(".summary.json"),
        vcfs=compared_files(".vcf.gz"),
    output:
        pairs=report(
            "results/{genome}/comparisons/{callset}/class_pairs.tsv",
            caption="../report/comparison.rst",
            category="5. Model comparison",
            subcategory="{callset}",
        ),
        plot=report(
            "results/{genome}/comparisons/{callset}/class_pairs.png",
            caption="../report/comparison.rst",
            category="5. Model comparison",
            subcategory="{callset}",
        ),
        correlations=report(
            "results/{genome}/comparisons/{callset}/rank_correlation.tsv",
            caption="../report/comparison.rst",
            category="5. Model comparison",
            subcategory="{callset}",
        ),
        speed=report(
            "results/{genome}/comparisons/{callset}/speed.tsv",
            caption="../report/comparison.rst",
            category="5. Model comparison",
            subcategory="{callset}",
        ),
        vcf="results/{genome}/comparisons/{callset}/{callset}.vcf.gz",
        tbi="results/{genome}/comparisons/{callset}/{callset}.vcf.gz.tbi",
    log:
        "logs/{genome}/compare_models_{callset}.log",
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=30,
    params:
        models=lambda w: callset_models(w.callset),
        benchmarks=lambda w: scoring_benchmarks(w.genome, w.callset),
        seed=config["seed"],
    script:
        "../workflow_scripts/compare_models.py"
