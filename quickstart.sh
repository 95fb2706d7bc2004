#!/usr/bin/env bash
# genofm quick start: sets up a virtual environment, then runs the demo or the tests.
#
#   bash quickstart.sh demo [snakemake args]   set up, run the demo workflow end to end, write report.html
#   bash quickstart.sh test [pytest args]      set up (with test tools and data), then the tests
#   bash quickstart.sh setup                   set up only
#
# Needs Python >= 3.11. GPU users: install your CUDA build of torch into the environment
# first (GENOFM_VENV names it, default .venv); the CPU build is installed only when no torch
# is importable there. For the tests, as root, missing bedtools/samtools/bcftools/tabix/phast are
# installed with apt-get and the real test data are fetched from Debian packages.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${GENOFM_VENV:-.venv}
TORCH_CPU_VERSION=2.13.0

pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "quickstart: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$(pick_python)" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        echo "quickstart: installing torch==$TORCH_CPU_VERSION (CPU build)"
        "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_CPU_VERSION"
    fi
    "$VENV/bin/python" -m pip install --quiet -r requirements.txt
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
}

setup_tests() {
    "$VENV/bin/python" -m pip install --quiet -r requirements-test.txt
    # gpn (GPN checkpoints, and the reference outputs of tests/test_gpn.py) is pure Python and
    # declares Python >= 3.13, but runs on 3.11; its dependencies are genofm's own.
    "$VENV/bin/python" -m pip install --quiet --no-deps --ignore-requires-python gpn==0.9.0
    local missing=()
    for entry in bedtools samtools bcftools tabix phast:phyloP; do  # package[:command]
        command -v "${entry#*:}" >/dev/null 2>&1 || missing+=("${entry%%:*}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "quickstart: installing ${missing[*]} with apt-get"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "quickstart: please install ${missing[*]} (tests comparing against them will fail)" >&2
        fi
    fi
    bash tests/fetch_test_data.sh
    bash tests/fetch_test_data.sh mtb
    GENOFM_PYTHON="$VENV/bin/python" bash tests/fetch_test_data.sh zymo
}

command=${1:-}
shift || true
case "$command" in
    setup) setup ;;
    demo)
        setup
        "$VENV/bin/snakemake" --cores all "$@"
        "$VENV/bin/snakemake" --report report.html "$@"
        echo "quickstart: done; open report.html (plots and tables of every stage); annotated VCF:"
        echo "  results/demo/variants/demo_conv/demo_variants.vcf.gz"
        ;;
    test)
        setup
        setup_tests
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
