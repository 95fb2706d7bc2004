"""Shared fixtures: real test data (fetched by tests/fetch_test_data.sh), small FASTAs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pysam
import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("GENOFM_TESTDATA", REPO / ".cache" / "testdata"))


# Fixtures whose data tests/fetch_test_data.sh downloads: the tests using them are `network`.
NETWORK_FIXTURES = {"chr20", "chr20_plain", "mtb", "mtb_genome", "zymo"}


def pytest_collection_modifyitems(items):
    for item in items:
        if NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.network)
        if item.get_closest_marker("workflow"):  # snakemake end to end: minutes
            item.add_marker(pytest.mark.slow)


WORKFLOW_FILES = ["Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles", "report"]


def copy_workflow(workdir: Path, keep_existing: bool = False) -> Path:
    """The workflow's files (Snakefile, rules, scripts, config...) copied into workdir; with
    keep_existing, those already there are left as they are (a benchmark's reused workdir).
    The tests and the benchmarks that run the workflow all copy it here."""
    for name in WORKFLOW_FILES:
        src, dst = REPO / name, Path(workdir) / name
        if not (keep_existing and dst.exists()):
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return Path(workdir)


def without_library(config: dict) -> dict:
    """The demo config without its oligo-library task and region set (a full fine-tune on 10,000
    oligos and saturation mutagenesis: minutes; test_workflow runs it on a cut library)."""
    config["probes"].pop("library", None)
    config["genomes"]["demo"]["region_sets"].pop("library", None)
    return config


def cheaper_probes_and_scoring(config: dict) -> dict:
    """The demo config's probes, attribution and scoring made cheap, for runs that check every
    stage, not what it learns: no oligo library (without_library), demo_conv's context cut to
    320 bases (the 300-bp probe windows fit; scoring 3x cheaper), 2 folds, 40 windows
    attributed, a figure of 40 tokens."""
    without_library(config)
    config["models"]["demo_conv"]["architecture"]["max_len"] = 320
    for task in ("promoters", "promoter_activity"):
        config["probes"][task]["folds"] = 2
    config["probes"]["promoters"]["attribution"]["max_regions"] = 40
    config["variant_scoring"]["figure_tokens"] = 40
    return config


def promoter_task_only(config: dict) -> dict:
    """The demo config with its promoter-classification task alone: no value task, no
    predictions or attributions, no trained heads scoring the variants. What tests that swap the
    demo's model or region sets build on."""
    task = config["probes"]["promoters"]
    task.update(predict=[], attribution={"enabled": False})
    config["probes"] = {"promoters": task}
    for callset in config["variants"].values():
        callset["heads"] = callset["finetuned_heads"] = []
    return config


def imported_models_demo_config(models: dict[str, dict], finetuned: dict[str, dict] | None = None) -> dict:
    """The demo cut to what a workflow test of imported models needs: those models; for each a
    promoter task on the one region set it reads, with 2 folds (task `promoters` for one model,
    `promoters_<model>` for several), fine-tuned as `finetuned` says (else not); the call set's
    first 300 kb scored by each (about a fifth of its records; the others OUTSIDE_REGIONS); a
    40-token figure; a thread a job."""
    import yaml

    config = promoter_task_only(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    demo = config["genomes"]["demo"]
    demo["region_sets"] = {"promoters_vs_background": demo["region_sets"]["promoters_vs_background"]}
    config["models"] = models
    task = config["probes"].pop("promoters")
    finetuned = finetuned or {}
    for name in models:
        config["probes"]["promoters" if len(models) == 1 else f"promoters_{name}"] = task | {
            "model": name, "folds": 2, "finetune": finetuned.get(name, {"method": "none"})}
    callset = config["variants"]["demo_variants"]
    callset.update(model="", models=list(models), regions=["chr1:1-300000"])
    if len(models) == 1:
        callset.update(model=next(iter(models)), models=[])
    config["variant_scoring"]["figure_tokens"] = 40
    # one thread a job, so that two jobs share the 2 cores rather than wait for each other
    for section in ("embeddings", "variant_scoring"):
        config[section].setdefault("resources", {})["threads"] = 1
    return config


def scored_in_regions(table) -> bool:
    """Every record of an imported_models_demo_config run's table scored, or outside its 300 kb."""
    inside = table["status"] != "OUTSIDE_REGIONS"
    return len(table) == 530 and inside.sum() > 80 and (table.loc[inside, "status"] == "OK").all()


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `bash quickstart.sh test` (installs it as root) "
                    f"or install the Debian package yourself")
    return path


@pytest.fixture(scope="session")
def chr20() -> Path:
    """Human GRCh37 chr20 from Debian's vt-examples (bgzip + .fai + .gzi)."""
    path = TESTDATA / "vt" / "20.fa.gz"
    if not (path.exists() and Path(str(path) + ".gzi").exists()):
        pytest.fail(f"{path} is missing: run `bash tests/fetch_test_data.sh` first")
    return path


@pytest.fixture(scope="session")
def zymo() -> Path:
    """Debian's maffilter-examples: a 13-genome Zymoseptoria alignment (MAF), its gene models
    (GFF3) and the reference FASTA the MAF carries (bgzip)."""
    directory = TESTDATA / "zymo"
    if not (directory / "IPO323.fa.gz.gzi").exists():
        pytest.fail(f"{directory} is missing: run `bash tests/fetch_test_data.sh zymo` first")
    return directory


@pytest.fixture(scope="session")
def chr20_plain(chr20, tmp_path_factory) -> Path:
    """chr20 uncompressed, for tools that want a plain FASTA."""
    out = tmp_path_factory.mktemp("chr20") / "20.fa"
    with open(out, "wb") as handle:
        subprocess.run(["gzip", "-dc", str(chr20)], stdout=handle, check=True)
    pysam.faidx(str(out))
    return out


def write_fasta(path: Path, records: dict[str, str], width: int = 60) -> Path:
    """A small plain FASTA with its .fai."""
    with open(path, "w") as handle:
        for name, seq in records.items():
            handle.write(f">{name}\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i:i + width] + "\n")
    pysam.faidx(str(path))
    return path
