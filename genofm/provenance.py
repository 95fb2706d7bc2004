"""Where a result came from: genofm version, the git commit of its source, library versions."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from . import __version__


def git_commit(directory: str | Path | None = None) -> str:
    """Commit of the checkout holding genofm ("+dirty" with uncommitted changes), or "unknown"."""
    directory = Path(directory or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance() -> dict:
    import numpy

    try:  # the genome rules' environment has no torch
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {"genofm_version": __version__, "git_commit": git_commit(), "python": platform.python_version(),
            "torch": torch_version, "numpy": numpy.__version__}
