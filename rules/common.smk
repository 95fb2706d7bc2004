# Helpers shared by the rules: config lookups and the list of final outputs.
import sys


wildcard_constraints:
    genome=r"[A-Za-z0-9_-]+",
    set=r"[A-Za-z0-9_-]+",


URL_SCHEMES = ("http://", "https://", "ftp://")


def genome_config(genome):
    return config["genomes"][genome]


def local_source(source):
    """The local file behind a source (so edits rerun the download), or [] for a URL."""
    if not source or source.startswith(URL_SCHEMES):
        return []
    return source.removeprefix("file://")


def annotation_source(genome):
    return genome_config(genome).get("annotation", {}).get("source", "")


def annotation_format(genome):
    from genofm.annotation import annotation_format as detect

    ann = genome_config(genome)["annotation"]
    return detect(ann["source"], ann["format"])


def annotation_path(genome):
    return f"resources/{genome}/annotation.{annotation_format(genome)}.gz"


def region_set(genome, name):
    return genome_config(genome)["region_sets"][name]


def region_set_inputs(wildcards):
    """FASTA always; the annotation for annotation sets; the BED file for BED sets."""
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
    return inputs


def download_options():
    return dict(config["download"])


def all_outputs():
    outputs = []
    for genome, gcfg in config["genomes"].items():
        outputs.append(f"resources/{genome}/genome.fa.gz")
        for name in gcfg["region_sets"]:
            outputs.append(f"results/{genome}/regions/{name}.parquet")
            outputs.append(f"results/{genome}/tokens/{name}/tokens.npy")
    return outputs
