"""Compressed input files, told apart by their magic bytes (never by the file name): the
one home of gzip/bgzip sniffing and of opening possibly-gzipped text."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
# Compressions genofm does not read, named so that they fail with a clear message.
UNSUPPORTED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def compression(path: str | Path) -> str:
    """'plain', 'gzip', 'bgzip' (gzip members with BGZF's extra field: htslib can seek in
    it), or 'bzip2' / 'xz' / 'zstd', which genofm does not read."""
    with open(path, "rb") as handle:
        magic = handle.read(16)
    for prefix, name in UNSUPPORTED_MAGIC.items():
        if magic.startswith(prefix):
            return name
    if not magic.startswith(GZIP_MAGIC):
        return "plain"
    return "bgzip" if magic[12:14] == b"BC" else "gzip"


def is_gzip(path: str | Path) -> bool:
    """gzip or bgzip (BGZF is a series of gzip members: gzip reads it too)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def is_plain_gzip(path: str | Path) -> bool:
    """gzip without BGZF's extra field: htslib streams it but cannot seek in it."""
    return compression(path) == "gzip"


def open_text(path: str | Path) -> IO[str]:
    """A plain, gzip or bgzip text file, opened for reading text."""
    return gzip.open(path, "rt") if is_gzip(path) else open(path, "rt")


def tokenizer_files(directory: Path) -> list[str]:
    """The tokenizer files a Hugging Face checkpoint directory has: vocab.txt (Nucleotide
    Transformer) or the tokenizers library's files (GPN)."""
    names = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    return [name for name in names if (Path(directory) / name).exists()]
