# Helpers shared by the rules: config lookups and the list of final outputs.
#
# A rule's params hold only settings that change its outputs: genofm.config's dataclasses
# say which (result_settings); resources (threads, GPUs, memory, run time) and run-only
# settings (logging cadence) reach the jobs through `threads:`, `resources:` and the config.
import json
import os

from genofm.config import (
    AttributionTaskSettings,
    CallsetConfig,
    EmbedConfig,
    FinetuneConfig,
    FoldConfig,
    ModelGenome,
    ProbeConfig,
    ScoringConfig,
    TrainConfig,
    ArchitectureConfig,
    result_settings,
)
from genofm.errors import GenofmInputError
from genofm.files import tokenizer_files


def sorted_keys(value):
    """The config with every mapping's keys sorted, recursively."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


# Key order means nothing in a config, but it shows in the params Snakemake tracks: sort it,
# so that reordering a config file reruns nothing.
_canonical_config = sorted_keys(config)
config.clear()
config.update(_canonical_config)


wildcard_constraints:
    genome=r"[A-Za-z0-9_-]+",
    set=r"[A-Za-z0-9_-]+",
    model=r"[A-Za-z0-9_-]+",
    callset=r"[A-Za-z0-9_-]+",
    task=r"[A-Za-z0-9_-]+",
    shard=r"\d+",
    shards=r"\d+",


URL_SCHEMES = ("http://", "https://", "ftp://")


def genome_config(genome):
    return config["genomes"][genome]


def local_source(source):
    """The local file behind a source (so edits rerun the download), or [] for a URL;
    file: URLs may be absolute (file:///data/x.fa.gz) or relative (file:data/x.fa.gz).
    """
    if not source or source.startswith(URL_SCHEMES):
        return []
    if source.lower().startswith("file:"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        return url2pathname(urlsplit(source).path)
    return source


def annotation_source(genome):
    return genome_config(genome).get("annotation", {}).get("source", "")


def alignment_source(genome):
    return genome_config(genome)["alignment"]["source"]


def annotation_format(genome):
    from genofm.annotation import annotation_format as detect

    ann = genome_config(genome)["annotation"]
    return detect(ann["source"], ann["format"])


def annotation_path(genome):
    return f"resources/{genome}/annotation.{annotation_format(genome)}.gz"


def region_set(genome, name):
    return genome_config(genome)["region_sets"][name]


def region_set_inputs(wildcards):
    """The genome's FASTA always; the annotation for annotation sets; the BED file for BED
    sets; the library's FASTA and labels for FASTA sets."""
    spec = region_set(wildcards.genome, wildcards.set)
    inputs = {"fasta": rules.download_reference.output.fasta}
    if spec["type"] == "annotation":
        if not annotation_source(wildcards.genome):
            raise ValueError(
                f"region set {wildcards.set!r} of genome {wildcards.genome!r} takes "
                "annotation features, but the genome has no annotation.source"
            )
        inputs["annotation"] = annotation_path(wildcards.genome)
    elif spec["type"] == "bed":
        inputs["bed"] = spec["bed"]
    elif spec["type"] == "fasta":
        inputs["library"] = spec["fasta"]
        if spec["labels"]["tsv"]:
            inputs["labels"] = spec["labels"]["tsv"]
    return inputs


def model_config(model):
    return config["models"][model]


def is_imported(model):
    """A published checkpoint read from a local directory, not pretrained here."""
    return bool(model_config(model)["huggingface"])


def model_file(model):
    """The file that stands for a model: its weights, or the pointer to an imported checkpoint."""
    if model not in config["models"]:
        raise ValueError(
            f"model {model!r} is not configured (models: {sorted(config['models'])})"
        )
    if is_imported(model):
        return f"results/models/{model}/huggingface.json"
    if not model_config(model)["genomes"]:
        raise ValueError(
            f"model {model!r} has neither genomes to pretrain on nor a huggingface checkpoint"
        )
    return f"results/models/{model}/model.safetensors"


def model_alignment(model, genome):
    """The alignment arrays an alignment-aware model reads on `genome` (none for other models)."""
    if not model_config(model)["aligned_species"]:
        return []
    if not genome_config(genome)["alignment"]["source"]:
        raise ValueError(
            f"model {model!r} reads an alignment (aligned_species), and genome {genome!r} has none "
            f"(genomes.{genome}.alignment.source)"
        )
    return f"results/{genome}/alignment"


def huggingface_file(model, name):
    return os.path.join(model_config(model)["huggingface"], name)


def huggingface_tokenizer_files(model):
    """The checkpoint's tokenizer files: vocab.txt (Nucleotide Transformer) or the tokenizers
    library's (GPN); vocab.txt when there are none, so that the missing file is named.
    """
    directory = model_config(model)["huggingface"]
    found = tokenizer_files(directory) if os.path.isdir(directory) else []
    return [os.path.join(directory, name) for name in found or ["vocab.txt"]]


def token_set_dir(genome, name):
    return f"results/{genome}/tokens/{name}"


def pretrain_inputs(wildcards):
    """The tokenizer spec of every token set the model trains or validates on."""
    inputs = {}
    for genome, data in model_config(wildcards.model)["genomes"].items():
        if genome not in config["genomes"]:
            raise ValueError(
                f"model {wildcards.model!r} names genome {genome!r}, which is not configured"
            )
        for name in data["train_sets"] + data["valid_sets"]:
            if name not in config["genomes"][genome]["region_sets"]:
                raise ValueError(
                    f"model {wildcards.model!r}: genome {genome!r} has no region set {name!r}"
                )
            inputs[f"{genome}__{name}"] = f"{token_set_dir(genome, name)}/tokens.npy"
        if model_config(wildcards.model)["aligned_species"]:
            inputs[f"{genome}__alignment"] = f"results/{genome}/alignment"
    source = model_config(wildcards.model)["init_from"]
    if source:  # the source is trained (or imported) first
        inputs["init_from"] = model_file(source)
    return inputs


def model_resources(model):
    return model_config(model)["resources"]


def multi_node(model):
    return model_resources(model)["nodes"] > 1


def multi_node_gres(model):
    """GPUs per node of a multi-node job (SLURM's --gpus counts the whole job)."""
    gpus = model_resources(model)["gpus"]
    return f"gpu:{gpus}" if multi_node(model) and gpus else None


def train_set_weights(model, genome, genome_data):
    """{"set_weights": [one per train set]} when some set is weighted; absent otherwise (so
    models without weights keep their params)."""
    try:
        weights = ModelGenome(**genome_data).train_set_weights()
    except GenofmInputError as err:
        raise ValueError(f"models.{model}.genomes.{genome}: {err}") from None
    return {"set_weights": weights} if weights else {}


def pretrain_spec(model):
    """What the model depends on, as one JSON string (a tracked param)."""
    cfg = model_config(model)
    training = result_settings(TrainConfig, cfg["training"]) | {"seed": config["seed"]}
    data = [
        {
            "genome": genome,
            "train": [token_set_dir(genome, n) for n in d["train_sets"]],
            "valid": [token_set_dir(genome, n) for n in d["valid_sets"]],
            "weight": d["weight"],
        }
        | (
            {"alignment": f"results/{genome}/alignment"}
            if cfg["aligned_species"]
            else {}
        )
        | train_set_weights(model, genome, d)
        for genome, d in cfg["genomes"].items()
    ]
    architecture = result_settings(ArchitectureConfig, cfg["architecture"]) | {
        "vocab_size": tokenizer_vocab_size()
    }
    if cfg["aligned_species"]:
        architecture["aligned_species"] = cfg["aligned_species"]
    spec = {"architecture": architecture, "training": training, "data": data}
    if cfg["init_from"]:  # absent otherwise: models from scratch keep their params
        spec["init_from"] = {
            "model": cfg["init_from"],
            "path": f"results/models/{cfg['init_from']}",
        }
    return json.dumps(spec, sort_keys=True)


def tokenizer_vocab_size():
    from genofm.tokenizer import KmerTokenizer

    if is_bpe():
        return config["tokenizer"]["vocab_size"]
    return KmerTokenizer(
        k=config["tokenizer"]["k"], overlapping=config["tokenizer"]["overlapping"]
    ).vocab_size


BPE_TOKENIZER = "results/tokenizer/tokenizer.json"


def is_bpe():
    return config["tokenizer"]["type"] == "bpe"


def bpe_train_sets():
    """{genome: [region sets]} the BPE merges are learnt from: tokenizer.train_sets, or when
    empty the train_sets of every model pretrained here (sorted, each set once)."""
    chosen = config["tokenizer"]["train_sets"]
    if not chosen:
        chosen = {}
        for model in sorted(config["models"]):
            if is_imported(model):
                continue
            for genome, data in model_config(model)["genomes"].items():
                chosen.setdefault(genome, set()).update(data["train_sets"])
    return {genome: sorted(chosen[genome]) for genome in sorted(chosen)}


def bpe_train_regions():
    return [
        f"results/{genome}/regions/{name}.parquet"
        for genome, names in bpe_train_sets().items()
        for name in names
    ]


def tokenize_inputs(wildcards):
    """A region set, and the trained BPE tokenizer when tokenizer.type is bpe."""
    inputs = {"regions": f"results/{wildcards.genome}/regions/{wildcards.set}.parquet"}
    if is_bpe():
        inputs["bpe"] = BPE_TOKENIZER
    return inputs


def check_tokenizer():
    """tokenizer.type bpe: no k-mer-only setting, and training sets that exist."""
    if not is_bpe():
        return
    if config["tokenizer"]["overlapping"]:
        raise ValueError(
            "tokenizer.overlapping: true is for k-mers; BPE tokens never overlap "
            "(tokenizer.type: bpe)"
        )
    sets = bpe_train_sets()
    for genome, names in sets.items():
        where = f"tokenizer.train_sets.{genome}"
        if genome not in config["genomes"]:
            raise ValueError(f"{where}: genome {genome!r} is not configured")
        for name in names:
            if name not in config["genomes"][genome]["region_sets"]:
                raise ValueError(
                    f"{where}: genome {genome!r} has no region set {name!r}"
                )
    if not any(sets.values()):
        raise ValueError(
            "tokenizer.type bpe: no region set to learn the merges from (tokenizer.train_sets "
            "is empty and no model is pretrained here)"
        )


check_tokenizer()


def check_processes(model):
    resources = model_resources(model)
    processes, gpus = resources["processes"], resources["gpus"]
    if gpus and processes != gpus:
        raise ValueError(
            f"model {model!r}: resources.processes ({processes}) must equal resources.gpus "
            f"({gpus}): one process per GPU"
        )


def check_aligned_species(model):
    """An alignment-aware model: one genome with an alignment that has the species, 1-mers."""
    cfg = model_config(model)
    species = cfg["aligned_species"]
    if not species:
        return
    where = f"models.{model}.aligned_species"
    problems = []
    if cfg["huggingface"] or len(cfg["genomes"]) != 1:
        problems.append("the model must be pretrained here on exactly one genome")
    for genome in cfg["genomes"]:
        alignment = (
            genome_config(genome)["alignment"] if genome in config["genomes"] else {}
        )
        if not alignment.get("source"):
            problems.append(f"genome {genome!r} has no alignment.source")
        elif set(species) - set(alignment["species"]):
            missing = sorted(set(species) - set(alignment["species"]))
            problems.append(
                f"{', '.join(missing)} not in genomes.{genome}.alignment.species "
                f"({', '.join(alignment['species'])})"
            )
    if config["tokenizer"]["k"] != 1 or config["tokenizer"]["overlapping"] or is_bpe():
        problems.append(
            "it needs single-nucleotide tokens (tokenizer.type: kmer, tokenizer.k: 1)"
        )
    if cfg["training"]["objective"] != "mlm":
        problems.append("it is a masked LM (training.objective: mlm)")
    if cfg["export_huggingface"]:
        problems.append("export_huggingface: ESM reads no alignment")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


def transfer_settings_of(model, where):
    """What init_from compares of a model (genofm.transfer); None for an imported checkpoint
    whose config.json is not there yet (the import names the missing file)."""
    from genofm.transfer import esm_settings, transfer_settings

    cfg = model_config(model)
    if is_imported(model):
        path = huggingface_file(model, "config.json")
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return esm_settings(json.load(handle), where)
    architecture = result_settings(ArchitectureConfig, cfg["architecture"])
    return transfer_settings(
        architecture,
        cfg["training"]["objective"],
        cfg["aligned_species"],
        tokenizer_vocab_size(),
        config["tokenizer"],
    )


def check_init_from(model):
    """init_from names another model, no cycle, of the same network and vocabulary."""
    from genofm.transfer import config_key, differences

    source = model_config(model)["init_from"]
    if not source:
        return
    where = f"models.{model}.init_from"
    if source not in config["models"]:
        raise ValueError(
            f"{where}: {source!r} is not a model of models ({', '.join(sorted(config['models']))})"
        )
    if is_imported(model):
        raise ValueError(
            f"{where}: {model!r} is an imported checkpoint (huggingface), not trained here"
        )
    # an unknown model further on is named by its own check
    chain, current = [model], source
    while current in config["models"]:
        if current in chain:
            raise ValueError(f"{where}: a cycle: {' -> '.join(chain + [current])}")
        chain.append(current)
        current = model_config(current)["init_from"]
    theirs = transfer_settings_of(source, where)
    if theirs is None:
        return
    differing = differences(theirs, transfer_settings_of(model, where))
    if differing:
        raise ValueError(
            f"{where}: "
            + "; ".join(
                f"{source!r} has {key} {a!r}, {config_key(model, key)} is {b!r}"
                for key, a, b in differing
            )
        )


for _model in config["models"]:
    check_processes(_model)
    check_aligned_species(_model)
    check_init_from(_model)


def probe_task(task):
    return config["probes"][task]


def probe_config(task):
    return result_settings(ProbeConfig, probe_task(task)) | {"seed": config["seed"]}


def fold_config(task):
    """What fine-tuning shares with the probe: its folds (not the classifier)."""
    return result_settings(FoldConfig, probe_task(task)) | {"seed": config["seed"]}


def finetune_config(task):
    return result_settings(FinetuneConfig, probe_task(task)["finetune"]) | {
        "seed": config["seed"]
    }


def finetune_resources(task):
    return probe_task(task)["finetune"]["resources"]


def embeddings_of(task):
    t = probe_task(task)
    base = f"results/{t['genome']}/embeddings/{t['model']}/{t['region_set']}"
    return f"{base}.npy", f"{base}.index.parquet"


def regions_of(task):
    t = probe_task(task)
    return f"results/{t['genome']}/regions/{t['region_set']}.parquet"


def labels_of(task):
    """The task's label table (labels.tsv), or no input: the region set's own labels."""
    return probe_task(task)["labels"]["tsv"] or []


def probe_head(task, name):
    t = probe_task(task)
    return f"results/{t['genome']}/probes/{t['model']}/{task}/head/{name}"


def attribution_config(task):
    return probe_task(task)["attribution"]


def attribution_head(task, name):
    """The trained probe the attributions explain (none for the other targets)."""
    return (
        probe_head(task, name) if attribution_config(task)["target"] == "probe" else []
    )


def attribution_finetune(task):
    """The fine-tune the attributions explain (target finetune), or no input."""
    if attribution_config(task)["target"] != "finetune":
        return []
    if probe_task(task)["finetune"]["method"] == "none":
        raise ValueError(
            f"probes.{task}.attribution.target is finetune, but the task does not fine-tune "
            f"(probes.{task}.finetune.method is none); set a method, or explain the probe"
        )
    return finetuned_model(task)


def attribution_outputs():
    return [
        f"results/{t['genome']}/probes/{t['model']}/{task}/attribution/motifs.tsv"
        for task, t in config["probes"].items()
        if t["attribution"]["enabled"]
    ]


def finetuned_model(task):
    """The directory of a task's fine-tune trained on every region (rule finetune)."""
    t = probe_task(task)
    return f"results/{t['genome']}/finetune/{t['model']}/{task}/model"


def prediction_outputs():
    """The predict rules' outputs: every task's configured region sets, by its probe and, when
    the task fine-tunes, by its fine-tune."""
    outputs = []
    for task, t in config["probes"].items():
        for name in t["predict"]:
            outputs.append(
                f"results/{t['genome']}/probes/{t['model']}/{task}/predict/{name}.tsv"
            )
            if t["finetune"]["method"] != "none":
                outputs.append(
                    f"results/{t['genome']}/finetune/{t['model']}/{task}/predict/{name}.tsv"
                )
    return outputs


def check_probe_task(task):
    """Region sets a task names must be region sets of its genome (checked before any job)."""
    t = probe_task(task)
    sets = config["genomes"].get(t["genome"], {}).get("region_sets", {})
    for key, name in [("region_set", t["region_set"])] + [
        ("predict", n) for n in t["predict"]
    ]:
        if name not in sets:
            raise ValueError(
                f"probes.{task}.{key}: {name!r} is not a region set of genome {t['genome']!r} "
                f"(its region sets: {', '.join(sorted(sets)) or 'none'})"
            )


for _task in config["probes"]:
    check_probe_task(_task)


def all_probe_outputs(name):
    """Probe outputs of every task, and fine-tuning outputs of tasks that fine-tune."""
    outputs = []
    for task, t in config["probes"].items():
        outputs.append(f"results/{t['genome']}/probes/{t['model']}/{task}/{name}.tsv")
        if t["finetune"]["method"] != "none":
            outputs.append(
                f"results/{t['genome']}/finetune/{t['model']}/{task}/{name}.tsv"
            )
    return outputs


def callset_config(callset):
    return config["variants"][callset]


def callset_models(callset):
    """The models that score a call set: `model`, or the list `models`."""
    cs = callset_config(callset)
    if bool(cs.get("model")) == bool(cs.get("models")):
        raise ValueError(
            f"call set {callset!r}: set variants.{callset}.model (one model) or "
            f"variants.{callset}.models (several, compared), not both nor neither"
        )
    models = cs["models"] or [cs["model"]]
    for model in models:
        if model not in config["models"]:
            raise ValueError(
                f"call set {callset!r} names model {model!r}, which is not configured "
                f"(models: {sorted(config['models'])})"
            )
    return models


def callset_inputs(wildcards):
    """The model, the reference (with its indexes) and the VCF of a call set."""
    cs = callset_config(wildcards.callset)
    if cs["genome"] != wildcards.genome or wildcards.model not in callset_models(
        wildcards.callset
    ):
        raise ValueError(
            f"call set {wildcards.callset!r} is configured for genome {cs['genome']!r} and "
            f"models {callset_models(wildcards.callset)}, not {wildcards.genome!r} and {wildcards.model!r}"
        )
    return {
        "model": model_file(wildcards.model),
        "fasta": f"resources/{cs['genome']}/genome.fa.gz",
        "fai": f"resources/{cs['genome']}/genome.fa.gz.fai",
        "gzi": f"resources/{cs['genome']}/genome.fa.gz.gzi",
        "vcf": cs["vcf"],
        **conservation_inputs(cs["genome"]),
        **(
            {"alignment": model_alignment(wildcards.model, cs["genome"])}
            if model_config(wildcards.model)["aligned_species"]
            else {}
        ),
    }


def callset_heads(callset, model, key="heads"):
    """The probe tasks of a call set's `heads` (or `finetuned_heads`) on this model."""
    return [
        t for t in callset_config(callset)[key] if config["probes"][t]["model"] == model
    ]


def check_callset_heads(callset):
    """Each head a call set names is a probe task on its genome, on one of its models, and
    each fine-tuned head's task fine-tunes."""
    cs = callset_config(callset)
    for key in ("heads", "finetuned_heads"):
        for task in cs[key]:
            where = f"variants.{callset}.{key}: {task!r}"
            if task not in config["probes"]:
                raise ValueError(
                    f"{where} is not a probe task (tasks: {', '.join(sorted(config['probes'])) or 'none'})"
                )
            t = config["probes"][task]
            if t["genome"] != cs["genome"]:
                raise ValueError(
                    f"{where} is a task on genome {t['genome']!r}, the call set is on {cs['genome']!r}"
                )
            if t["model"] not in callset_models(callset):
                raise ValueError(
                    f"{where} is trained on model {t['model']!r}, which does not score this call set "
                    f"(its models: {', '.join(callset_models(callset))})"
                )
            if key == "finetuned_heads" and t["finetune"]["method"] == "none":
                raise ValueError(
                    f"{where}: the task does not fine-tune (probes.{task}.finetune.method is none); "
                    f"set a method, or name it under heads to use its probe"
                )


for _callset in config["variants"]:
    check_callset_heads(_callset)


def conservation_inputs(genome):
    """phyloP's inputs for a genome with an alignment and an annotation (else none)."""
    gcfg = genome_config(genome)
    if not gcfg["alignment"]["source"] or not annotation_source(genome):
        return {}
    return {
        "neutral_model": f"results/{genome}/conservation/neutral.mod",
        "alignment": f"results/{genome}/alignment",
    }


def baseline_regions(wildcards):
    """The region sets the Markov baseline learns from: those the model was trained on in
    this genome (none for imported checkpoints: the baseline then learns the reference).
    """
    if not config["variant_scoring"]["markov_order"] or is_imported(wildcards.model):
        return []
    data = model_config(wildcards.model)["genomes"].get(wildcards.genome)
    if not data:
        return []
    return [
        f"results/{wildcards.genome}/regions/{name}.parquet"
        for name in data["train_sets"]
    ]


def scoring_config():
    return result_settings(ScoringConfig, config["variant_scoring"])


def embed_config():
    return result_settings(EmbedConfig, config["embeddings"])


def labelled_snv_inputs(wildcards):
    spec = callset_config(wildcards.callset)["labelled_snvs"]
    genome = wildcards.genome
    if not spec.get("genbank") and not spec.get("annotation"):
        raise ValueError(
            f"call set {wildcards.callset!r} has neither labelled_snvs.genbank nor "
            "labelled_snvs.annotation to make its VCF from"
        )
    inputs = {
        "fasta": f"resources/{genome}/genome.fa.gz",
        "fai": f"resources/{genome}/genome.fa.gz.fai",
    }
    if spec.get("annotation"):
        if not annotation_source(genome):
            raise ValueError(
                f"call set {wildcards.callset!r}: labelled_snvs.annotation, but genome "
                f"{genome!r} has no annotation.source"
            )
        inputs["annotation"] = annotation_path(genome)
    else:
        inputs["genbank"] = spec["genbank"]
    if spec.get("min_aligned_species"):
        if not genome_config(genome)["alignment"]["source"]:
            raise ValueError(
                f"call set {wildcards.callset!r}: labelled_snvs.min_aligned_species, but "
                f"genome {genome!r} has no alignment.source"
            )
        inputs["alignment"] = f"results/{genome}/alignment"
    if spec.get("within_set"):
        inputs["within"] = f"results/{genome}/regions/{spec['within_set']}.parquet"
    return inputs


def callset_shards(callset):
    return callset_config(callset)["shards"]


def shard_parts(wildcards):
    """A sharded call set's shard files, in order (none for one job)."""
    n = callset_shards(wildcards.callset)
    if n == 1:
        return {}
    base = f"results/{wildcards.genome}/variants/{wildcards.model}/{wildcards.callset}.shards"
    return {
        f"{kind}_parts": [f"{base}/{i}-of-{n}.{kind}" for i in range(n)]
        for kind in ("vcf", "tsv", "json")
    }


def head_inputs(wildcards):
    """The trained probes and fine-tunes that score the call set's variants with this model
    (its `heads` and `finetuned_heads`)."""
    tasks = callset_heads(wildcards.callset, wildcards.model)
    finetuned = callset_heads(wildcards.callset, wildcards.model, "finetuned_heads")
    return {
        "head_weights": [probe_head(t, "head.safetensors") for t in tasks],
        "head_meta": [probe_head(t, "head.json") for t in tasks],
        "finetuned": [finetuned_model(t) for t in finetuned],
    }


def scoring_job_inputs(wildcards):
    """What a job that scores records reads: the call set's inputs and the heads."""
    return callset_inputs(wildcards) | head_inputs(wildcards)


def scoring_inputs(wildcards):
    """One job scores the call set, or it joins the shards' parts."""
    if callset_shards(wildcards.callset) > 1:
        return shard_parts(wildcards)
    return scoring_job_inputs(wildcards)


def scoring_resource(name):
    """variant_scoring.resources, for the jobs that score (a join of shards needs little)."""

    def value(wildcards, attempt=1):
        if callset_shards(wildcards.callset) > 1 and not hasattr(wildcards, "shard"):
            return {"mem_mb": 2000 * attempt, "runtime": 60, "gpu": 0}[name]
        amount = config["variant_scoring"]["resources"][name.replace("gpu", "gpus")]
        return amount * attempt if name == "mem_mb" else amount

    return value


def scoring_benchmarks(genome, callset):
    """Per model of the call set, the benchmark files of the jobs that scored it."""
    n = callset_shards(callset)
    jobs = [""] if n == 1 else [f"_{i}-of-{n}" for i in range(n)]
    return [
        [
            f"benchmarks/{genome}/score_variants_{model}_{callset}{job}.tsv"
            for job in jobs
        ]
        for model in callset_models(callset)
    ]


def embedding_shards():
    return config["embeddings"]["shards"]


def embedding_parts(wildcards):
    """A sharded embedding's shard matrices, in order (none for one job)."""
    n = embedding_shards()
    base = f"results/{wildcards.genome}/embeddings/{wildcards.model}/{wildcards.set}.shards"
    return [f"{base}/{i}-of-{n}.npy" for i in range(n)] if n > 1 else []


def callset_options(callset):
    return result_settings(CallsetConfig, callset_config(callset))


def variant_outputs(callset):
    cs = callset_config(callset)
    models = callset_models(callset)
    outputs = []
    for model in models:
        base = f"results/{cs['genome']}/variants/{model}/{callset}"
        outputs += [
            f"{base}.vcf.gz",
            f"{base}/score_distributions.png",
            f"{base}/ism.png",
        ]
    if len(models) > 1:
        outputs.append(f"results/{cs['genome']}/comparisons/{callset}/class_pairs.tsv")
    return outputs


def compared_files(suffix):
    """The per-model files of the call set of a comparison, in the order of its models."""

    def files(wildcards):
        return [
            f"results/{wildcards.genome}/variants/{model}/{wildcards.callset}{suffix}"
            for model in callset_models(wildcards.callset)
        ]

    return files


def all_outputs():
    outputs = []
    for genome, gcfg in config["genomes"].items():
        outputs.append(f"resources/{genome}/genome.fa.gz")
        if gcfg["alignment"]["source"]:
            outputs.append(f"results/{genome}/alignment")
            if annotation_source(genome):
                outputs.append(f"results/{genome}/conservation/neutral.mod")
        for name in gcfg["region_sets"]:
            outputs.append(f"results/{genome}/regions/{name}.parquet")
            outputs.append(f"results/{genome}/tokens/{name}/tokens.npy")
    for model, mcfg in config["models"].items():
        outputs.append(model_file(model))
        if mcfg["export_huggingface"]:
            outputs.append(f"results/models/{model}/huggingface")
    if config["probes"]:
        outputs.append("results/probes_summary.tsv")
    outputs += prediction_outputs() + attribution_outputs()
    for callset in config["variants"]:
        outputs += variant_outputs(callset)
    return outputs
