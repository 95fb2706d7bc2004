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


@pytest.mark.parametrize("config", ["config/config.yaml", "config/examples/grch38_chr11.yaml"])
def test_shipped_configs_validate_and_get_defaults(config):
    data = yaml.safe_load((REPO / config).read_text())
    validate(data, str(REPO / "config/schema.yaml"))
    assert data["download"]["retries"] == 4  # defaults filled in
    for genome in data["genomes"].values():
        assert genome["soft_mask"] in ("keep", "upper")
        for region_set in genome["region_sets"].values():
            assert "max_n_fraction" in region_set


def test_snakefmt_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
