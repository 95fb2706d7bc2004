#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment, from the directory snakemake was
# started in: the genofm checkout (where the Snakefile is). It installs the genofm package,
# editable, so that results record the checkout's git commit and code edits need no new env.
set -euo pipefail
if ! grep -q '^name = "genofm"' pyproject.toml 2>/dev/null; then
    echo "genofm post-deploy: run snakemake from the genofm checkout (no genofm pyproject.toml in $PWD)" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation -e .
