"""Write outputs atomically: into a temporary sibling first, renamed into place on success.

A failed step therefore never leaves a half-written file where Snakemake (or a user)
would take it for a finished one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds."""
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths (same file names, in a hidden sibling folder) for `paths`.

    On success they are renamed onto `paths` in the order given (put index files last, so a
    reader never finds an index without its data); on failure all are removed.
    """
    targets = [Path(p) for p in paths]
    parent = targets[0].parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{targets[0].name}.", suffix=".tmp", dir=parent))
    try:
        tmps = [tmp_dir / t.name for t in targets]
        yield tmps
        for tmp, target in zip(tmps, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
