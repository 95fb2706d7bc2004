"""Environments: every rule names a pinned conda env in envs/, the envs pin the same versions as
requirements.txt (the README's pip setup), and each env installs the genofm package itself."""

from __future__ import annotations

import re

import yaml

from conftest import REPO

CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
# the workflow's driver, not its jobs: installed where snakemake runs, not in the job envs
DRIVER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep"}


def requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    torch = re.search(r"^TORCH_CPU_VERSION=(\S+)", (REPO / "quickstart.sh").read_text(), re.M).group(1)
    return {**pins, "torch": torch}  # quickstart installs torch on its own (CPU build)


def env_pins(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    assert env["channels"][:2] == ["conda-forge", "bioconda"], path
    pins = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str) and "=" in dep or dep == "pip", f"{path.name}: {dep!r} is not pinned"
        if dep != "pip":
            name, version = dep.split("=", 1)
            pins[CONDA_TO_PIP.get(name, name)] = version
    return pins


def test_every_rule_names_an_env_that_exists():
    text = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    n_rules = len(re.findall(r"^rule \w+:", text, re.M))
    envs = re.findall(r"^    conda:\n        \"\.\./envs/([\w.-]+)\"", text, re.M)
    assert len(envs) == n_rules  # every rule of rules/ (`all`, in the Snakefile, runs nothing)
    for name in set(envs):
        assert (REPO / "envs" / name).exists(), name
        post_deploy = REPO / "envs" / name.replace(".yaml", ".post-deploy.sh")
        assert "pip install" in post_deploy.read_text() and "-e ." in post_deploy.read_text()


def test_envs_and_requirements_pin_the_same_versions():
    pip = requirements()
    seen = set()
    for path in sorted((REPO / "envs").glob("*.yaml")):
        for name, version in env_pins(path).items():
            if name == "python":
                continue
            assert name in pip, f"{path.name} pins {name}, which requirements.txt does not"
            assert version == pip[name], f"{name}: {path.name} pins {version}, requirements.txt {pip[name]}"
            seen.add(name)
    missing = set(pip) - seen - DRIVER_ONLY
    assert not missing, f"requirements.txt pins {sorted(missing)}, which no env in envs/ has"
