"""The workflow's configuration, typed: the one source of every key, default and description.

Each stage's settings are a dataclass here (the stage modules import them: ModelConfig extends
ArchitectureConfig, the pretraining loop takes TrainConfig, and so on); the sections of the
config file are those dataclasses plus what the rules need around them. `config/schema.yaml`,
which Snakemake validates the config against and which fills in defaults, is generated from
them by genofm.schema (`python -m genofm.schema > config/schema.yaml`; a test checks it is
current).

Every field is declared with `setting()`: its default, a description, and JSON-schema limits.
`result=False` marks a setting that decides how a job runs, not what it writes (logging and
checkpoint cadence, download retries); those never reach the params a rule tracks, so changing
them reruns nothing. Each section's `resources` (threads, GPUs, memory, run time) is its own
sub-object for the same reason. This module imports no torch: the Snakefile reads it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from .errors import GenofmInputError

NAME_PATTERN = "^[A-Za-z0-9_-]+$"
CHECKSUM_PATTERN = "^(sha256:[0-9a-fA-F]{64}|md5:[0-9a-fA-F]{32})$"
REGION_PATTERN = "^[^:]+:[0-9,]+-[0-9,]+$"


def setting(default=MISSING, doc: str = "", *, factory=None, result: bool = True, in_config: bool = True,
            required: bool = False, choices: list | None = None, items: dict | None = None, **limits):
    """A dataclass field with what the schema says of it.

    choices: the allowed values; items: the schema of a list's items; limits: JSON-schema
    keywords (minimum, maximum, exclusiveMinimum, pattern, minItems); required: the key must be
    given; in_config: False for fields the workflow fills in itself (the seed, the vocabulary).
    """
    metadata = {"doc": " ".join(doc.split()), "result": result, "in_config": in_config, "required": required,
                "choices": choices, "items": items, "limits": limits}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def result_settings(cls, values: dict) -> dict:
    """The keys of `values` that are settings of `cls` and change a result: what a rule tracks."""
    return {f.name: values[f.name] for f in fields(cls)
            if f.metadata.get("result", True) and f.metadata.get("in_config", True) and f.name in values}


def run_settings(cls, values: dict) -> dict:
    """The keys of `values` that are settings of `cls` but change no result (logging cadence...)."""
    return {f.name: values[f.name] for f in fields(cls)
            if not f.metadata.get("result", True) and f.name in values}


def config_fields(cls, values: dict) -> dict:
    """The keys of `values` that are config settings of `cls` (result or not)."""
    return {f.name: values[f.name] for f in fields(cls) if f.metadata.get("in_config", True) and f.name in values}


def _check_choices(obj) -> None:
    """Stage dataclasses built in code (not from a validated config) still refuse unknown values."""
    for f in fields(obj):
        choices = f.metadata.get("choices")
        if choices and getattr(obj, f.name) not in choices:
            raise GenofmInputError(f"{f.name} must be one of {', '.join(map(str, choices))}, "
                                   f"not {getattr(obj, f.name)!r}")


# --- resources: where and how fast a job runs, never a result ------------------------------

@dataclass
class JobResources:
    """What the job asks the scheduler for; none of it changes a result."""

    threads: int = setting(2, "CPU threads of the job (torch uses this many).", minimum=1)
    gpus: int = setting(0, "GPUs of the job (resources gpu), run in bf16 autocast; 0: the CPU, even on a GPU node.",
                        minimum=0, maximum=1)
    mem_mb: int = setting(4000, "Memory of the job in MB.", minimum=100)
    runtime: int = setting(60, "Wall-time limit of the job in minutes.", minimum=1)


@dataclass
class ScoringResources(JobResources):
    runtime: int = setting(240, "Wall-time limit of the job in minutes.", minimum=1)


@dataclass
class PretrainResources(JobResources):
    nodes: int = setting(1, "Nodes of the job: one torchrun agent per node, `processes` each, meeting at a c10d "
                            "rendezvous (more than 1 needs the SLURM profile: one job of `nodes` tasks, srun "
                            "starts the agents). The result equals one process at the same batch_size.", minimum=1)
    processes: int = setting(1, "Training processes per node (torchrun --nproc_per_node); one per GPU on a GPU "
                                "node. The result equals one process at the same batch_size.", minimum=1)
    gpus: int = setting(0, "GPUs per node the job asks the scheduler for (resources gpu; gres gpu:N over several "
                           "nodes) and trains on, one per process, in bf16 autocast; 0: the CPU, even on a GPU "
                           "node.", minimum=0)
    threads: int = setting(2, "CPU threads per node (split between its processes).", minimum=1)
    mem_mb: int = setting(8000, "Memory per node in MB.", minimum=100)
    runtime: int = setting(120, "Wall-time limit of the job in minutes.", minimum=1)


# --- genomes and region sets -----------------------------------------------------------------

@dataclass
class AnnotationSettings:
    """Optional gene annotation (GTF or GFF3, plain or gzip) for region sets."""

    source: str = setting("", "URL or local path of the annotation; empty for none.")
    checksum: str | None = setting(None, '"sha256:<hex>" or "md5:<hex>" of the annotation file; null skips the '
                                         'check.', pattern=CHECKSUM_PATTERN)
    format: str = setting("auto", "Annotation format; auto decides by file name (.gtf / .gff3 / .gff).",
                          choices=["auto", "gtf", "gff3"])
    transcript_attribute: str = setting("auto", "The attribute that groups CDS lines into coding sequences (for "
                                                "conservation's four-fold degenerate sites): auto is transcript_id "
                                                "in GTF, Parent in GFF3; JGI's GFF2 uses name.")


@dataclass
class AlignmentSettings:
    """Optional whole-genome alignment (MAF, multiz/TBA style, reference-projected; plain, gzip or
    bgzip) with this genome as its reference: results/{genome}/alignment/ holds, per contig, the
    bases the other species align to each reference base."""

    source: str = setting("", "URL or local path of the MAF; empty for none.")
    checksum: str | None = setting(None, '"sha256:<hex>" or "md5:<hex>" of the MAF file; null skips the check.',
                                   pattern=CHECKSUM_PATTERN)
    reference_species: str = setting("", "The species of this genome in the MAF (src names are species.contig, "
                                         "split on the first dot).")
    species: list[str] = setting(doc="The other species to keep, in this order (the arrays' columns after the "
                                     "reference); the MAF's others are left out and named in the log.",
                                 factory=list)
    tree: str = setting("", "Species tree topology (Newick) for the neutral model; empty: the one in the MAF's "
                            "header (TBA, multiz).")
    neutral_sites: int = setting(100_000, "Four-fold degenerate sites (a seeded sample, from the genome's "
                                          "annotation) that phyloFit fits the neutral model on. With an "
                                          "annotation, call sets of the genome get phyloP scores (GFM_PHYLOP).",
                                 minimum=100)


@dataclass
class LabelTableSettings:
    """Labels from a table keyed by region name (in a probe task: in place of the region set's
    own): a TSV with a header, the region names in column `name`. Every region of the set needs a
    row; rows naming no region are counted in the log."""

    tsv: str = setting("", "Path of the TSV; empty: the region set's labels.")
    column: str = setting("value", "Header of the column holding the label.")


@dataclass
class RegionSet:
    """One region set. `type` chooses the source: a BED file, features of the genome's annotation,
    a tiling of the whole genome, or the records of a FASTA file (a designed library, e.g. an MPRA's
    oligos: sequences not taken from the genome). Keys that do not apply to the type are ignored."""

    type: str = setting("tiling", "Where the regions come from.", required=True,
                        choices=["bed", "annotation", "tiling", "fasta"])
    bed: str = setting("", "type bed: path of the BED file (3 to 6+ columns, 0-based half-open).")
    label_column: int | None = setting(None, "type bed: 1-based column holding each region's label (e.g. 7); "
                                             "null for none.", minimum=4)
    fasta: str = setting("", "type fasta: path of the FASTA file (plain or gzip); each record is one region "
                             "(named by the header's first word, kept in file order; bases A C G T N only).")
    labels: LabelTableSettings = setting(doc="type fasta: each record's label from a table keyed by record name "
                                             "(tsv, column); empty tsv: no labels.", factory=LabelTableSettings)
    label: str | None = setting(None, "One label given to every region of the set (for probes); null for none.")
    feature: str = setting("promoter", "type annotation: which feature to take.",
                           choices=["promoter", "exon", "cds", "intron", "intergenic", "gene", "five_prime_utr",
                                    "three_prime_utr"])
    upstream: int = setting(1000, "feature promoter: bases upstream of the TSS (strand-aware).", minimum=0)
    downstream: int = setting(200, "feature promoter: bases downstream of the TSS (strand-aware).", minimum=0)
    min_length: int = setting(1, "type annotation: drop nothing silently; features shorter than this are skipped "
                                 "and counted in the log.", minimum=1)
    merge_overlapping: bool = setting(True, "type annotation: merge overlapping features of the same strand (e.g. "
                                            "exons shared by transcripts).")
    window: int = setting(1024, "type tiling: window length in bases.", minimum=1)
    stride: int = setting(1024, "type tiling: step between window starts (equal to window for no overlap).",
                          minimum=1)
    max_n_fraction: float = setting(0.1, "type tiling: windows with a larger fraction of N are left out (and "
                                         "counted in the log).", minimum=0, maximum=1)
    block: int = setting(0, "type tiling: cut each contig into blocks of this many bases and hold out every "
                            "held_out_every-th one (for one-contig genomes); 0: no blocks.", minimum=0)
    held_out_every: int = setting(10, "type tiling with block: every n-th block (the last of each run of n) is "
                                      "held out.", minimum=2)
    blocks: str = setting("all", "type tiling with block: tile the train blocks, the held-out blocks, or all of "
                                 "each contig.", choices=["all", "train", "held_out"])
    contigs: list[str] = setting(doc="Restrict the set to these contigs (e.g. hold chr2 out for validation); "
                                     "empty for all.", factory=list)


@dataclass
class GenomeSettings:
    """One genome."""

    source: str = setting("", "Reference FASTA: an http(s)://, ftp:// or file:// URL, or a local path (relative "
                              "to the working directory). Plain, gzip or bgzip.", required=True)
    checksum: str | None = setting(None, '"sha256:<hex>" or "md5:<hex>" of the file as downloaded; a mismatch '
                                         'stops the run and leaves nothing behind. null skips the check (not '
                                         'recommended).', pattern=CHECKSUM_PATTERN)
    contigs: list[str] = setting(doc="Contigs to keep (names as in the source); empty keeps all.", factory=list)
    rename: dict[str, str] = setting(doc='Contig renaming, source name to new name (e.g. {"1": "chr1"}); applied '
                                         'to the annotation too.', factory=dict)
    soft_mask: str = setting("keep", "Keep soft-masked (lowercase) bases as they are, or upper-case them.",
                             choices=["keep", "upper"])
    ambiguous_bases: str = setting("error", "IUPAC ambiguity codes (R, Y, K, M, ...) in the reference: stop with "
                                            "an error naming the contig and line, or turn them into N.",
                                   choices=["error", "to_n"])
    annotation: AnnotationSettings = setting(doc=AnnotationSettings.__doc__, factory=AnnotationSettings)
    alignment: AlignmentSettings = setting(doc=AlignmentSettings.__doc__, factory=AlignmentSettings)
    region_sets: dict[str, RegionSet] = setting(doc="Region sets to extract, by name "
                                                    "(results/{genome}/regions/{set}.parquet).", factory=dict)


@dataclass
class TokenizerSettings:
    """The tokenizer of every model pretrained here: k-mers (the default, the Nucleotide Transformer v2
    layout) or a BPE vocabulary learnt from the training regions (DNABERT-2 style)."""

    type: str = setting("kmer", "kmer: fixed k-mers (k, overlapping); bpe: byte-pair merges learnt with Hugging Face "
                                "tokenizers on tokenizer.train_sets (results/tokenizer/tokenizer.json); k is then "
                                "unused and overlapping must stay false.", choices=["kmer", "bpe"])
    k: int = setting(6, "k-mer length (6 as in Nucleotide Transformer; 1 for single nucleotides).",
                     minimum=1, maximum=8)
    overlapping: bool = setting(False, "Overlapping k-mers at every position (DNABERT-1 style) instead of NT's "
                                       "non-overlapping ones.")
    vocab_size: int = setting(4096, "bpe: tokens in the vocabulary, genofm's 6 special tokens and the bases A C G N T "
                                    "included (so at least 11); the training sequences must allow that many merges.",
                              minimum=11)
    min_frequency: int = setting(2, "bpe: a merge is learnt only for a pair seen at least this often.", minimum=1)
    train_sets: dict[str, list[str]] = setting(doc="bpe: the region sets the merges are learnt from, by genome "
                                                   "({genome: [set, ...]}). Empty: the train_sets of every model "
                                                   "pretrained here, in every genome they name.", factory=dict)


# --- models ------------------------------------------------------------------------------------

@dataclass
class ArchitectureConfig:
    """The network (genofm.model.ModelConfig adds what the workflow fills in: the vocabulary...)."""

    max_len: int = setting(512, "Context in tokens, <cls> included (positions).", minimum=2)
    n_layers: int = setting(4, "Transformer blocks.", minimum=1)
    d_model: int = setting(256, "Hidden width.", minimum=8)
    n_heads: int = setting(4, "Attention heads (d_model must divide by it).", minimum=1)
    d_ff: int = setting(1024, "Feed-forward hidden width (each of the two SwiGLU branches).", minimum=8)
    dropout: float = setting(0.0, "Dropout probability.", minimum=0, maximum=1)
    position: str = setting("rope", "Position encoding (RoPE as Nucleotide Transformer v2).",
                            choices=["rope", "alibi", "learned"])
    ffn: str = setting("gelu", "Feed-forward activation.", choices=["gelu", "swiglu"])
    norm_eps: float = setting(1e-5, "LayerNorm epsilon.", exclusiveMinimum=0)
    rope_base: float = setting(10000.0, "RoPE frequency base.", exclusiveMinimum=0)
    tie_embeddings: bool = setting(True, "Share input embedding and output projection.")
    lm_head: str = setting("esm", "Masked-LM head: esm (dense, GELU, LayerNorm, projection, as ESM and Nucleotide "
                                  "Transformer; exportable as a Hugging Face EsmForMaskedLM) or a plain linear "
                                  "projection.", choices=["esm", "linear"])
    mixer: str = setting("attention", "Token mixing in each block: attention (a transformer, as Nucleotide "
                                      "Transformer), conv (dilated depthwise convolutions, GPN-like: learns DNA "
                                      "quickly on CPUs) or hybrid (convolutions, then n_attention_layers attention "
                                      "blocks).", choices=["attention", "conv", "hybrid"])
    conv_kernel: int = setting(9, "Convolution kernel width in tokens (odd).", minimum=1)
    conv_dilation_base: int = setting(2, "Dilations grow by this factor per convolution block (2 as in GPN; 3 "
                                         "gives codon multiples).", minimum=2)
    conv_max_dilation: int = setting(32, "Dilations grow from 1 per convolution block up to this, then start "
                                         "again.", minimum=1)
    n_attention_layers: int = setting(1, "hybrid: how many of the last blocks use attention.", minimum=1)


@dataclass
class TrainConfig:
    """The training loop (genofm.pretrain); the seed is the top-level `seed`."""

    objective: str = setting("mlm", "mlm: masked LM on an encoder; clm: next token on a decoder.",
                             choices=["mlm", "clm"])
    max_steps: int = setting(1000, "Optimizer steps.", minimum=1)
    batch_size: int = setting(64, "Sequences per optimizer step over all processes.", minimum=1)
    micro_batch_size: int = setting(16, "Sequences per forward pass and process (gradient accumulation makes up "
                                        "the rest).", minimum=1)
    lr: float = setting(1e-3, "Peak learning rate (AdamW).", exclusiveMinimum=0)
    min_lr_ratio: float = setting(0.1, "Final learning rate as a fraction of the peak (cosine decay).",
                                  minimum=0, maximum=1)
    warmup_steps: int = setting(100, "Linear warmup steps.", minimum=0)
    weight_decay: float = setting(0.01, "AdamW weight decay (matrices only).", minimum=0)
    beta1: float = setting(0.9, "AdamW beta1.", minimum=0, maximum=1)
    beta2: float = setting(0.98, "AdamW beta2.", minimum=0, maximum=1)
    grad_clip: float = setting(1.0, "Gradient norm clipping.", exclusiveMinimum=0)
    mask_prob: float = setting(0.15, "mlm: fraction of tokens predicted (80% masked, 10% random, 10% kept).",
                               exclusiveMinimum=0, maximum=1)
    rc_augment: bool = setting(False, "Train on the reverse strand of half the windows.")
    eval_every: int = setting(100, "Steps between validations.", minimum=1)
    eval_windows: int = setting(256, "Validation windows (fixed across evaluations).", minimum=1)
    metrics_every: int = setting(10, "Steps between rows of metrics.tsv and points of loss.png (the training "
                                     "loss averaged over the steps since the last row); evaluations add rows.",
                                 minimum=1)
    checkpoint_every: int = setting(100, "Steps between resumable checkpoints (a resumed run gives the same "
                                         "model).", minimum=1, result=False)
    log_every: int = setting(10, "Steps between progress lines in the log.", minimum=1, result=False)
    seed: int = setting(42, in_config=False)

    def __post_init__(self):
        _check_choices(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        from .errors import dataclass_from_dict

        return dataclass_from_dict(cls, data, "training config")


@dataclass
class ModelGenome:
    """The token sets of one genome."""

    train_sets: list[str] = setting(doc="Region sets (of this genome) to train on.", factory=list, required=True,
                                    minItems=1)
    valid_sets: list[str] = setting(doc="Region sets held out for validation (e.g. another chromosome).",
                                    factory=list)
    weight: float = setting(1.0, "Relative sampling weight of this genome among the model's genomes.",
                            exclusiveMinimum=0)
    set_weights: dict[str, float] = setting(doc="Relative sampling weight per base of some train_sets, by name "
                                                "(the others: 1). Windows are drawn in proportion to a set's "
                                                "bases times its weight: upweight regulatory regions (promoter "
                                                "windows), as species-aware DNA LMs train on them, to teach a "
                                                "small model their motifs.", factory=dict)

    def __post_init__(self):
        unknown = sorted(set(self.set_weights) - set(self.train_sets))
        if unknown:
            raise GenofmInputError(f"set_weights names {unknown}, which are not among train_sets {self.train_sets}")
        bad = {k: v for k, v in self.set_weights.items() if not (isinstance(v, (int, float)) and v > 0)}
        if bad:
            raise GenofmInputError(f"set_weights must be positive numbers: {bad}")

    def train_set_weights(self) -> list[float] | None:
        """One weight per train set, in order; None when all are 1 (the default draw)."""
        weights = [float(self.set_weights.get(name, 1.0)) for name in self.train_sets]
        return None if all(w == 1.0 for w in weights) else weights


@dataclass
class ModelSettings:
    """One model: pretrained by the workflow on `genomes` (default), or a published checkpoint
    read from a local directory (`huggingface`), which then needs no genomes."""

    huggingface: str = setting("", "Local directory of a Hugging Face checkpoint, read offline: an EsmForMaskedLM "
                                   "(a downloaded Nucleotide Transformer: config.json, model.safetensors, "
                                   "vocab.txt) or a GPN masked LM (config.json, model.safetensors, tokenizer.json; "
                                   "needs the gpn package). Its own tokenizer files give the tokenizer. Empty: the "
                                   "workflow pretrains the model.")
    trust_remote_code: bool = setting(False, "huggingface: let the checkpoint run its own Python code (auto_map in "
                                             "its config.json: Caduceus, HyenaDNA, DNABERT-2). That code runs with the "
                                             "workflow's rights: read it first. Off, such checkpoints are refused.")
    export_huggingface: bool = setting(False, "Also write the trained model as a Hugging Face EsmForMaskedLM "
                                              "checkpoint in results/models/{model}/huggingface/ "
                                              "(AutoModelForMaskedLM and AutoTokenizer load it).")
    genomes: dict[str, ModelGenome] = setting(doc="Training data, by genome name (a key of `genomes`).",
                                              factory=dict)
    init_from: str = setting("", "Continued pretraining (transfer): another model of `models` (pretrained here, "
                                 "or an imported EsmForMaskedLM checkpoint) whose weights this model starts from "
                                 "instead of a random initialisation; the optimizer and the schedule start afresh. "
                                 "The architecture, objective and vocabulary must match (dropout may differ; "
                                 "max_len too with rope or alibi positions; aligned_species when the source has "
                                 "none, the new input starting at zero). summary.json records the source's name, "
                                 "the sha256 of its weights and its provenance. Empty: from scratch.")
    aligned_species: list[str] = setting(doc="Alignment-aware model (GPN-MSA's design): at each position the input "
                                             "is the reference base plus the bases these species of the genome's "
                                             "alignment (genomes.<g>.alignment.species) align to it. Needs one "
                                             "genome, with an alignment, and single-nucleotide tokens (tokenizer.k: "
                                             "1). Leave out strains of the reference species: the model would copy "
                                             "their base. Empty: a single-sequence model.", factory=list)
    architecture: ArchitectureConfig = setting(doc="The network (genofm.model.ModelConfig); vocab_size comes from "
                                                   "the tokenizer.", factory=ArchitectureConfig)
    training: TrainConfig = setting(doc=TrainConfig.__doc__, factory=TrainConfig)
    resources: PretrainResources = setting(doc="The pretraining job's resources.", factory=PretrainResources,
                                           result=False)


# --- embeddings, probes, fine-tuning ----------------------------------------------------------

@dataclass
class EmbedConfig:
    """How embedding extraction turns a region into one vector (genofm.embed)."""

    layer: int = setting(-1, "Layer to pool: -1 the final normalised output, 0 the token embeddings, i the output "
                             "of block i.", minimum=-1)
    pooling: str = setting("mean", "mean over real tokens (<cls> included, as NT's usage), the <cls> token, or a "
                                   "central window.", choices=["mean", "cls", "center"])
    center_tokens: int = setting(16, "pooling center: tokens around the middle of the region.", minimum=1)
    rc_average: bool = setting(False, "Average with the embedding of the reverse-complement strand.")
    window_overlap: int = setting(32, "Tokens shared by consecutive windows of a region longer than the context.",
                                  minimum=0)
    batch_tokens: int = setting(4096, "Tokens per forward pass, padding included (regions batched by length).",
                                minimum=1)
    dtype: str = setting("float32", "Storage type of the embedding matrix.", choices=["float32", "float16"])
    chunk_regions: int = setting(2048, "Regions read and embedded at a time (bounds memory); shards are whole "
                                       "chunks.", minimum=1)

    def __post_init__(self):
        _check_choices(self)


@dataclass
class EmbeddingSettings(EmbedConfig):
    resources: JobResources = setting(doc="The embedding jobs' resources.", factory=JobResources,
                                      result=False)
    shards: int = setting(1, "Embed each region set in this many jobs (each with these resources), each a run of "
                             "consecutive regions in whole chunks of chunk_regions, then join them into one .npy: "
                             "the same file as one job. Changing it reruns only the embedding jobs.", minimum=1,
                          result=False)


@dataclass
class FoldConfig:
    """What a probe task's probe and fine-tuning share: the kind of label and the folds."""

    objective: str = setting("classification", "classification: the labels are classes (AUROC, AUPRC, MCC, "
                                               "accuracy); regression: they are numbers, e.g. a promoter's "
                                               "activity (Spearman, Pearson, R²).",
                             choices=["classification", "regression"])
    folds: int = setting(5, "Cross-validation folds (stratified by class for classification).", minimum=2)
    holdout_contigs: list[str] = setting(doc="If set, train on the other contigs and test on these instead of "
                                             "k-fold.", factory=list)
    seed: int = setting(42, in_config=False)

    def __post_init__(self):
        _check_choices(self)


@dataclass
class ProbeConfig(FoldConfig):
    """A classifier on the embeddings (genofm.probe), cross-validated."""

    classifier: str = setting("logistic", "classification: logistic regression or a one-hidden-layer MLP "
                                          "(scikit-learn).", choices=["logistic", "mlp"])
    regressor: str = setting("ridge", "regression: ridge regression (penalty chosen by inner cross-validation) "
                                      "or a one-hidden-layer MLP (scikit-learn).", choices=["ridge", "mlp"])
    baseline_k: int = setting(4, "k of the k-mer frequency baseline.", minimum=1, maximum=8)

    def __post_init__(self):
        _check_choices(self)


@dataclass
class FinetuneConfig:
    """Fine-tuning of the model with a classification head (genofm.finetune)."""

    method: str = setting("lora", "peft LoRA or IA3 adapters, full fine-tuning, or none.",
                          choices=["none", "lora", "ia3", "full"])
    epochs: int = setting(3, "Passes over the training regions.", minimum=1)
    lr: float = setting(1e-3, "AdamW learning rate.", exclusiveMinimum=0)
    batch_size: int = setting(16, "Regions per step.", minimum=1)
    pooling: str = setting("mean", "How the head reads the model's output over a region: its mean over the tokens, "
                           "or each feature's maximum (a motif detector's reading, as in DeepBind or Basset: one "
                           "strong site anywhere counts, which a mean dilutes).", choices=["mean", "max"])
    lora_r: int = setting(8, "lora: rank of the adapters.", minimum=1)
    lora_alpha: int = setting(16, "lora: scaling numerator (alpha / r).", minimum=1)
    seed: int = setting(42, in_config=False)

    def __post_init__(self):
        _check_choices(self)


@dataclass
class FinetuneSettings(FinetuneConfig):
    """Fine-tuning of the model with a classification head on the same folds (genofm.finetune)."""

    resources: JobResources = setting(doc="The fine-tuning job's resources.", factory=JobResources,
                                      result=False)


@dataclass
class AttributionSettings:
    """How a region set is attributed (genofm.attribution): gradients of the target (the task's
    trained probe, or the model's likelihood) with respect to each token's input embedding,
    turned into the first-order effect of every single-base substitution."""

    method: str = setting("integrated_gradients", "integrated_gradients (along a path from a uniform-base "
                                                  "baseline), input_x_gradient, or ism: in-silico saturation "
                                                  "mutagenesis, the exact effect of every single-base "
                                                  "substitution (3L + 1 forward passes per region and strand; "
                                                  "for a model whose gradients do not show what it reads).",
                          choices=["integrated_gradients", "input_x_gradient", "ism"])
    steps: int = setting(16, "integrated_gradients: points on the path (Gauss-Legendre).", minimum=1)
    batch_regions: int = setting(32, "Regions per backward pass (ism: sequences per forward pass are "
                                     "batch_regions x 16).", minimum=1, result=False)
    chunk_regions: int = setting(1024, "Regions read, attributed and written at a time (bounds memory).",
                                 minimum=1, result=False)
    class_name: str | None = setting(None, "A two-class or multi-class probe: the class whose log-odds is "
                                           "explained; null: the last class in sorted order.")
    mask_groups: int = setting(4, "Likelihood of a masked LM: forward passes per region, each masking every "
                                  "mask_groups-th token.", minimum=1)

    def __post_init__(self):
        _check_choices(self)
        if min(self.steps, self.batch_regions, self.chunk_regions, self.mask_groups) < 1:
            raise GenofmInputError("attribution steps, batch_regions, chunk_regions and mask_groups must be positive")


@dataclass
class AttributionTaskSettings(AttributionSettings):
    """Gradient attributions of the task's regions, then TF-MoDISco motifs matched against JASPAR
    (results/{genome}/probes/{model}/{task}/attribution/; needs the `motifs` extra: modisco-lite,
    logomaker, pyjaspar)."""

    enabled: bool = setting(False, "Run it.")
    target: str = setting("probe", "What is explained: the task's trained probe, its fine-tune (model, "
                                   "adapters and head trained end to end; needs finetune.method other than "
                                   "none), or the model's (pseudo-)log-likelihood of each region.",
                          choices=["probe", "finetune", "likelihood"])
    label: str | None = setting(None, "Attribute only the regions with this label (from the task's labels "
                                      "table where it has one, else the region set's own; e.g. a library's "
                                      "active class: motifs are sought where the signal is); null: all.")
    max_regions: int = setting(0, "Attribute only the first n regions of the set (of those with `label`); 0: "
                                  "all.", minimum=0)
    jaspar_collection: str = setting("CORE", "JASPAR collection the motifs are matched against (pyjaspar, "
                                             "offline).")
    jaspar_tax_group: str = setting("vertebrates", "JASPAR taxonomic group; empty: all.")
    # TF-MoDISco's own defaults; on short regions narrow them (docs/attributions.md)
    seqlet_window: int = setting(21, "TF-MoDISco: bases whose summed contribution calls a seqlet.", minimum=2)
    seqlet_flank: int = setting(10, "TF-MoDISco: bases added on each side of a called seqlet.", minimum=0)
    seqlet_fdr: float = setting(0.2, "TF-MoDISco: false discovery rate of the seqlet calls against its null.",
                                exclusiveMinimum=0, maximum=1)
    pattern_window: int = setting(30, "TF-MoDISco: the most informative stretch a pattern is trimmed to (bases).",
                                  minimum=6)
    pattern_flank: int = setting(10, "TF-MoDISco: bases added on each side of a pattern's seqlets while clustering; "
                                     "a seqlet whose pattern_window + 2 pattern_flank bases cross the region's end "
                                     "is dropped.", minimum=0)
    min_metacluster_seqlets: int = setting(100, "TF-MoDISco: fewest seqlets of one sign worth clustering.",
                                           minimum=1)
    min_pattern_seqlets: int = setting(20, "TF-MoDISco: fewest seqlets a reported pattern holds.", minimum=1)
    resources: JobResources = setting(doc="The attribution job's resources.", factory=JobResources,
                                      result=False)

    def modisco_args(self) -> dict:
        """These settings as modiscolite.tfmodisco.TFMoDISco's keyword arguments."""
        return {"sliding_window_size": self.seqlet_window, "flank_size": self.seqlet_flank,
                "target_seqlet_fdr": self.seqlet_fdr, "trim_to_window_size": self.pattern_window,
                "initial_flank_to_add": self.pattern_flank, "min_metacluster_size": self.min_metacluster_seqlets,
                "final_min_cluster_size": self.min_pattern_seqlets}


@dataclass
class ProbeSettings(ProbeConfig):
    """One probe task."""

    model: str = setting("", "A model name of `models`.", required=True)
    genome: str = setting("", "A genome name of `genomes`.", required=True)
    region_set: str = setting("", "A labelled region set of that genome (its label column or label), unless "
                                  "`labels` gives the labels.", required=True)
    labels: LabelTableSettings = setting(doc=LabelTableSettings.__doc__, factory=LabelTableSettings)
    attribution: AttributionTaskSettings = setting(doc=AttributionTaskSettings.__doc__,
                                                   factory=AttributionTaskSettings)
    predict: list[str] = setting(doc="Region sets of the genome to apply the probe trained on every region to: "
                                     "results/{genome}/probes/{model}/{task}/predict/{set}.tsv, one row per "
                                     "region (class probabilities, or the predicted value).", factory=list,
                                 items={"pattern": NAME_PATTERN})
    finetune: FinetuneSettings = setting(doc=FinetuneSettings.__doc__, factory=FinetuneSettings)


# --- variants ----------------------------------------------------------------------------------

@dataclass
class CallsetConfig:
    """How the records of one call set are read (genofm.variants)."""

    class_info_key: str = setting("", "INFO key holding each variant's class (e.g. a consequence); the report "
                                      "groups scores by it and gives an AUROC for every class pair. A VEP (CSQ) "
                                      "or snpEff (ANN) key works too: the class is then the most severe "
                                      "consequence term of the entries for that ALT (fields found from the "
                                      "header's Format description). Empty: no classes.")
    codon_info_key: str = setting("CODON_POS", "INFO key holding a coding SNV's position in its codon (1-3, on "
                                               "the coding strand), as genofm's labelled SNV sets and the demo "
                                               "write it. Class pairs that codon position alone separates "
                                               "(missense or stop-gained vs synonymous) are then also shown "
                                               "within each codon position, beside the codon-position baseline "
                                               "(findings.tsv). Without the key, a VEP (CSQ, its Codons field) or "
                                               "snpEff (ANN, its HGVS.c) class_info_key gives it; else the record "
                                               "is not stratified.")
    contig_aliases: dict[str, str] = setting(doc="VCF contig name to reference contig name, for names the "
                                                 "automatic matching ('chr' prefix added or removed, chrM/MT) does "
                                                 "not find.", factory=dict)
    regions: list[str] = setting(doc='Score only variants in these regions ("chr:start-end", 1-based, inclusive); '
                                     'the others are written with status OUTSIDE_REGIONS. Empty: every variant.',
                                 factory=list, items={"pattern": REGION_PATTERN})
    max_unscored_fraction: float = setting(
        0.5, "Fail the run (and write nothing) when more than this fraction of the records was not scored "
             "(UNKNOWN_CONTIG, REF_MISMATCH, REF_N, POS_PAST_END, ALT_NOT_ACGT, N_IN_WINDOW): the sign of "
             "contig names that do not match or of another genome build. Records left out by choice or "
             "by nature count neither way: OUTSIDE_REGIONS, NEAR_CONTIG_END when "
             "near_contig_end is skip, NO_ALT and SYMBOLIC_ALLELE (gVCF blocks, structural variants). "
             "A run that scores no record at all always fails. 1: never fail on the fraction. A check, not a "
             "result: changing it reruns nothing that succeeded.",
        minimum=0, maximum=1, result=False)
    shards: int = setting(1, "Score the call set in this many jobs (each with variant_scoring.resources), each a "
                             "run of consecutive records (whole chunks of chunk_records, so a genomic region of a "
                             "sorted VCF), then join them: the same files as one job. Changing it reruns only the "
                             "scoring jobs.", minimum=1, result=False)


@dataclass
class LabelledSnvSettings:
    """Make this call set's VCF (at the `vcf` path, which must then be
    results/{genome}/labelled_snvs/{callset}.vcf) from a GenBank file or the genome's annotation:
    random SNVs in coding sequences classed by their true consequence (synonymous, missense,
    stop_gained) plus intergenic SNVs, in INFO/CLASS, with INFO/CODON_POS."""

    genbank: str = setting("", "GenBank flat file of the genome (one record); empty: the VCF is the user's (or "
                               "annotation).")
    annotation: bool = setting(False, "Draw from the genome's annotation instead (GTF, GFF3 or GFF2 CDS lines "
                                      "grouped into multi-exon coding sequences by annotation.transcript_attribute; "
                                      "every contig).")
    genetic_code: int = setting(1, "With annotation: the translation table (1 standard, 11 bacterial).",
                                choices=[1, 11])
    min_aligned_species: int = setting(0, "Only sites where at least this many other species of the genome's "
                                          "alignment have a base (genomes.<g>.alignment); 0: every site.",
                                       minimum=0)
    per_class: int = setting(500, "SNVs drawn per class.", minimum=1)
    seed: int = setting(1, "Seed of the draw.")
    within_set: str = setting("", "Draw only from genes wholly inside the regions of this region set (e.g. the "
                                  "held-out tiles of pretraining); empty: the whole genome.")


@dataclass
class CallsetSettings(CallsetConfig):
    """One call set."""

    vcf: str = setting("", "VCF, bgzip/gzip VCF or BCF (sorted; an index is not needed).", required=True)
    genome: str = setting("", "The genome (a key of `genomes`) the VCF's positions refer to.", required=True)
    model: str = setting("", "The model (a key of `models`) that scores the variants; or `models`.")
    models: list[str] = setting(doc="Several models (keys of `models`) that each score the call set in their own "
                                    "job, compared in one report (class-pair AUROCs, rank correlations, time "
                                    "per 1,000 variants) and one VCF with every model's INFO fields "
                                    "(GFM_LLR_<model>). Set `model` or `models`, not both.", factory=list)
    heads: list[str] = setting(doc="Probe tasks (keys of `probes`, on this genome) whose probe, trained on every "
                                   "region of its task, scores each variant: the change of its output (a "
                                   "regression's value, a two-class probe's log-odds of its second class) from "
                                   "the REF to the ALT sequence of a window as long as the task's regions, centred "
                                   "on the variant (column head_<task>, INFO GFM_HEAD_<TASK>). A model applies the "
                                   "heads of the tasks on its own embeddings.", factory=list,
                               items={"pattern": NAME_PATTERN})
    finetuned_heads: list[str] = setting(doc="Probe tasks (keys of `probes`, on this genome, that fine-tune) whose "
                                             "fine-tune, trained on every region of its task, scores each variant "
                                             "the same way, averaged over both strands (column "
                                             "head_<task>_finetuned, INFO GFM_HEAD_<TASK>_FINETUNED).",
                                         factory=list, items={"pattern": NAME_PATTERN})
    labelled_snvs: LabelledSnvSettings = setting(doc=LabelledSnvSettings.__doc__, factory=LabelledSnvSettings)
    figure_region: str = setting("", 'Region ("chr:start-end", 1-based) of the in-silico mutagenesis heatmap and '
                                     'the attention map. Empty: around the variant with the lowest LLR.')


@dataclass
class ScoringConfig:
    """How variants are scored (genofm.variant_scoring), for every call set."""

    window: int = setting(0, "Bases around each variant (on the token grid, variant central); 0: the model's "
                             "whole context.", minimum=0)
    rc_average: bool = setting(True, "Average each score over both strands.")
    llr: bool = setting(True, "Masked-marginal LLR at the variant's token (masked LM; SNVs and MNVs inside a "
                              "token), or the log-likelihood difference of the two windows (next-token LM).")
    embedding: bool = setting(True, "Cosine and L2 distance between REF and ALT window embeddings (every variant, "
                                    "indels included).")
    embedding_layer: int = setting(-1, "Layer of the embeddings: -1 the final output, i the output of block i.",
                                   minimum=-1)
    near_contig_end: str = setting("shorten", "Variants whose window reaches past a contig end: score on the "
                                              "shorter window, or leave unscored (both with status "
                                              "NEAR_CONTIG_END).", choices=["shorten", "skip"])
    max_n_fraction: float = setting(0.5, "Windows with a larger fraction of N are left unscored (N_IN_WINDOW).",
                                    minimum=0, maximum=1)
    batch_size: int = setting(32, "Sequences per forward pass.", minimum=1)
    chunk_records: int = setting(2000, "VCF records read, scored and written at a time (bounds memory).",
                                 minimum=1)
    influence_bases: int = setting(32, "Next-token models on single nucleotides: the influence score is the "
                                       "change (ALT - REF) in log-likelihood of this many bases after the variant, "
                                       "on the strand where it is most negative; 0: off.", minimum=0)

    def __post_init__(self):
        _check_choices(self)
        if self.window < 0 or self.batch_size < 1 or self.chunk_records < 1 or self.influence_bases < 0:
            raise GenofmInputError("window and influence_bases must be >= 0, batch_size and chunk_records >= 1")


@dataclass
class VariantScoringSettings(ScoringConfig):
    figure_tokens: int = setting(100, "Tokens of the region in the mutagenesis heatmap and attention map.",
                                 minimum=1)
    markov_order: int = setting(5, "Order of the Markov-model baseline scored beside the model (SNVs; learnt from "
                                   "the model's training regions, or the reference for imported models); 0: none.",
                                minimum=0, maximum=10)
    resources: ScoringResources = setting(doc="The scoring jobs' resources (the figures run on the CPU).",
                                          factory=ScoringResources, result=False)


@dataclass
class DownloadSettings:
    """How the download rules fetch sources (none of it changes what is written)."""

    retries: int = setting(4, "Retries after a transient network error (5xx, timeout, truncated transfer).",
                           minimum=0, result=False)
    backoff_seconds: float = setting(2.0, "First wait before a retry; doubles on each further retry.", minimum=0,
                                     result=False)
    timeout_seconds: float = setting(120, "Network timeout of one attempt, in seconds.", exclusiveMinimum=0,
                                     result=False)


@dataclass
class WorkflowConfig:
    """Configuration of the genofm workflow. Every key has a description and a default; unknown
    keys are rejected so that a typo stops the run with a message naming the key."""

    seed: int = setting(42, "Seed for every random step (sampling, initialisation, shuffling).")
    genomes: dict[str, GenomeSettings] = setting(doc="The genomes to process, by name (used in output paths: "
                                                     "results/{genome}/...). Several genomes make a multi-species "
                                                     "model. Names are letters, digits, '_' and '-'.", factory=dict)
    tokenizer: TokenizerSettings = setting(doc=TokenizerSettings.__doc__, factory=TokenizerSettings)
    models: dict[str, ModelSettings] = setting(doc="DNA language models to pretrain, by name "
                                                   "(results/models/{model}/). A model trains on the token sets of "
                                                   "one or more genomes (a multi-species model), each with a "
                                                   "sampling weight.", factory=dict)
    embeddings: EmbeddingSettings = setting(doc=EmbedConfig.__doc__, factory=EmbeddingSettings)
    probes: dict[str, ProbeSettings] = setting(doc="Probe tasks, by name: a classifier on the embeddings of a "
                                                   "labelled region set, with the same classifier on k-mer "
                                                   "frequencies beside it (results/{genome}/probes/{model}/{task}/).",
                                               factory=dict)
    variants: dict[str, CallsetSettings] = setting(doc="VCF call sets to score zero-shot, by name: "
                                                       "results/{genome}/variants/{model}/{callset}.vcf.gz (+ .tbi, "
                                                       ".tsv, .summary.json) and report figures in "
                                                       "results/{genome}/variants/{model}/{callset}/.", factory=dict)
    variant_scoring: VariantScoringSettings = setting(doc=ScoringConfig.__doc__, factory=VariantScoringSettings)
    download: DownloadSettings = setting(doc=DownloadSettings.__doc__, factory=DownloadSettings)
