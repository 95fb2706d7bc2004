"""The config schema documents every key, and the shipped configs validate against it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO

SCHEMA = yaml.safe_load((REPO / "config/schema.yaml").read_text())


def walk_properties(node, path="config"):
    """Yield (path, schema) of every named key in the schema, nested ones included."""
    if not isinstance(node, dict):
        return
    for name, sub in node.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from walk_properties(sub, f"{path}.{name}")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from walk_properties(extra, f"{path}.<name>")
    for name, sub in node.get("$defs", {}).items():
        yield from walk_properties(sub, f"$defs.{name}")


def test_every_key_has_a_description_and_a_default():
    keys = list(walk_properties(SCHEMA))
    assert len(keys) > 30
    for path, sub in keys:
        assert sub.get("description"), f"{path} has no description"
        assert "default" in sub, f"{path} has no default"


def test_every_object_rejects_unknown_keys():
    def objects(node, path="config"):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield path, node
            for key, sub in node.items():
                yield from objects(sub, f"{path}/{key}")

    for path, node in objects(SCHEMA):
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


@pytest.mark.parametrize("config", ["config/config.yaml", "config/examples/grch38_chr11.yaml",
                                    "config/examples/mtb.yaml"])
def test_shipped_configs_validate_and_get_defaults(config):
    data = yaml.safe_load((REPO / config).read_text())
    validate(data, str(REPO / "config/schema.yaml"))
    assert data["download"]["retries"] == 4  # defaults filled in
    for genome in data["genomes"].values():
        assert genome["soft_mask"] in ("keep", "upper")
        for region_set in genome["region_sets"].values():
            assert "max_n_fraction" in region_set


def test_python_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_committed_schema_is_generated_from_the_dataclasses():
    from genofm.schema import schema_yaml

    assert (REPO / "config/schema.yaml").read_text() == schema_yaml(), \
        "config/schema.yaml is stale: run `python -m genofm.schema > config/schema.yaml`"


def test_stage_dataclasses_and_schema_share_defaults():
    """The defaults a stage uses when a key is left out are the ones validation fills in."""
    from dataclasses import asdict

    from genofm.config import EmbedConfig, ScoringConfig, TrainConfig
    from genofm.model import ModelConfig

    data = yaml.safe_load("models: {m: {genomes: {g: {train_sets: [a]}}}}")
    validate(data, str(REPO / "config/schema.yaml"))
    model = data["models"]["m"]
    assert ModelConfig(**model["architecture"]).max_len == ModelConfig().max_len
    assert {k: v for k, v in asdict(TrainConfig()).items() if k != "seed"} == model["training"]
    assert asdict(EmbedConfig()) == {k: v for k, v in data["embeddings"].items() if k not in ("resources", "shards")}
    assert asdict(ScoringConfig()).items() <= data["variant_scoring"].items()


def test_result_settings_leave_out_resources_and_run_only_settings():
    from genofm.config import TrainConfig, result_settings, run_settings

    data = yaml.safe_load("models: {m: {genomes: {g: {train_sets: [a]}}}}")
    validate(data, str(REPO / "config/schema.yaml"))
    model = data["models"]["m"]
    tracked = result_settings(TrainConfig, model["training"])
    assert "lr" in tracked and "max_steps" in tracked
    assert not {"log_every", "checkpoint_every", "seed", "threads"} & set(tracked)
    assert set(run_settings(TrainConfig, model["training"])) == {"log_every", "checkpoint_every"}
    assert set(model["resources"]) == {"threads", "nodes", "processes", "gpus", "mem_mb", "runtime"}


def test_no_stage_tracks_its_job_resources():
    """A job's threads, memory or GPUs change no result, so no rule's params (result_settings)
    may hold them: changing them must not rerun the job."""
    import dataclasses

    from genofm import config as settings

    classes = [c for c in vars(settings).values() if dataclasses.is_dataclass(c) and isinstance(c, type)]
    with_resources = [c for c in classes if "resources" in c.__dataclass_fields__]
    assert {c.__name__ for c in with_resources} >= {"AttributionTaskSettings", "FinetuneSettings", "EmbeddingSettings"}
    for cls in with_resources:
        assert "resources" not in settings.result_settings(cls, {"resources": {"threads": 3}}), cls.__name__


def test_stage_settings_refuse_values_outside_their_choices():
    from genofm.config import EmbedConfig, TrainConfig
    from genofm.errors import GenofmInputError

    with pytest.raises(GenofmInputError, match="pooling must be one of mean, cls, center, not 'max'"):
        EmbedConfig(pooling="max")
    with pytest.raises(GenofmInputError, match="objective must be one of mlm, clm"):
        TrainConfig.from_dict({"objective": "gpt"})
