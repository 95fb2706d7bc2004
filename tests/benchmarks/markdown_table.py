"""The benchmarks' --markdown output: the figures they print, as a table the docs include."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

from genofm.atomic import atomic_path


def machine_line() -> str:
    """When and where this ran: the UTC date, CPU model (/proc/cpuinfo), cores and torch version."""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "an unknown CPU"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "(not installed)"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return f"Run on {date} (UTC) on {cpu}, {os.cpu_count()} cores, torch {torch_version}."


def write_markdown(path: Path, intro: str, header: list[str], rows: list[list[str]], footer: str = "") -> None:
    """The printed figures as a markdown table in path, written atomically."""
    script = Path(sys.argv[0]).name
    lines = [f"<!-- written by tests/benchmarks/{script} --markdown: rerun it, do not edit -->", "",
             f"{machine_line()} {intro}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", footer] if footer else []
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
