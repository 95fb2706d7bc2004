# Published models: a local Hugging Face checkpoint used in place of pretraining, and genofm
# models exported as Hugging Face checkpoints.


rule import_huggingface:
    input:
        config=lambda w: huggingface_file(w.model, "config.json"),
        weights=lambda w: huggingface_file(w.model, "model.safetensors"),
        tokenizer=lambda w: huggingface_tokenizer_files(w.model),
    output:
        pointer="results/models/{model}/huggingface.json",
    log:
        "logs/models/{model}/import_huggingface.log",
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=lambda w, attempt: 8000 * attempt,
        runtime=30,
    params:
        checkpoint=lambda w: model_config(w.model)["huggingface"],
        trust_remote_code=lambda w: model_config(w.model)["trust_remote_code"],
    script:
        "../workflow_scripts/import_huggingface.py"


rule export_huggingface:
    input:
        model="results/models/{model}/model.safetensors",
    output:
        checkpoint=directory("results/models/{model}/huggingface"),
    log:
        "logs/models/{model}/export_huggingface.log",
    conda:
        "../envs/model.yaml"
    resources:
        mem_mb=lambda w, attempt: 4000 * attempt,
        runtime=30,
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
    script:
        "../workflow_scripts/export_huggingface.py"
