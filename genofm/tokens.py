"""Token sets on disk: the tokenize stage's output and what pretraining reads.

A token set directory holds
  tokens.npy            all regions' token ids, concatenated (uint16 for k <= 7)
  offsets.npy           int64, n_regions + 1: region i is tokens[offsets[i]:offsets[i + 1]]
  index.parquet         the regions (chrom, start, end, strand, name, label), row i = region i
  tokenizer_spec.json   the tokenizer, plus vocab.txt / tokenizer_config.json for transformers
  tokenizer.json        a subword (BPE) tokenizer's own file, with a subword spec only
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .atomic import atomic_paths
from .errors import GenofmInputError
from .subword import SubwordTokenizer, load_tokenizer_spec
from .tokenizer import KmerTokenizer

TOKEN_FILES = ("tokens.npy", "offsets.npy", "index.parquet", "vocab.txt",
               "tokenizer_config.json", "tokenizer_spec.json")


def token_files(tokenizer) -> tuple[str, ...]:
    """The files of a token set made by `tokenizer` (the spec last: a reader finding it finds the rest)."""
    if isinstance(tokenizer, SubwordTokenizer):
        return (*TOKEN_FILES[:-1], "tokenizer.json", TOKEN_FILES[-1])
    return TOKEN_FILES

log = logging.getLogger(__name__)


@dataclass
class TokenSet:
    tokens: np.ndarray  # (n_tokens,) memory-mapped
    offsets: np.ndarray  # (n_regions + 1,)
    index: pd.DataFrame
    tokenizer: KmerTokenizer | SubwordTokenizer

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def region(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]


def tokenize_regions(regions_parquet: str | Path, tokenizer: KmerTokenizer | SubwordTokenizer, out_dir: str | Path,
                     batch_rows: int = 10_000) -> TokenSet:
    """Tokenize every region's sequence, streaming the parquet in batches; atomic output."""
    regions_parquet, out_dir = Path(regions_parquet), Path(out_dir)
    parquet = pq.ParquetFile(regions_parquet)
    names = token_files(tokenizer)
    with atomic_paths(*(out_dir / name for name in names)) as tmps:
        tmp = dict(zip(names, tmps))
        raw_path = tmp["tokens.npy"].with_suffix(".raw")
        lengths = []
        row = 0
        with open(raw_path, "wb") as raw:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=["name", "sequence"]):
                names = batch.column("name").to_pylist()
                sequences = batch.column("sequence").to_pylist()
                for i, seq in enumerate(sequences):
                    if not seq:
                        raise GenofmInputError(f"{regions_parquet}: region {names[i]!r} (row {row + i + 1}) has no sequence")
                labels = [f"{name} in {regions_parquet}" for name in names]
                ids, offsets = tokenizer.encode_batch(sequences, labels)
                raw.write(ids.tobytes())
                lengths.extend(np.diff(offsets).tolist())
                row += len(sequences)
        if not lengths:
            raise GenofmInputError(f"{regions_parquet}: the region set is empty")
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        _raw_to_npy(raw_path, tmp["tokens.npy"], tokenizer.dtype, int(offsets[-1]))
        np.save(tmp["offsets.npy"], offsets)
        index = pq.read_table(regions_parquet, columns=["chrom", "start", "end", "strand", "name", "label"])
        pq.write_table(index, tmp["tokens.npy"].with_name("index.parquet"))
        tokenizer.save(tmp["tokens.npy"].parent)
    kind = (f"{tokenizer.kind}" if isinstance(tokenizer, SubwordTokenizer)
            else f"k={tokenizer.k}" + (", overlapping" if tokenizer.overlapping else ""))
    log.info("%s: %d regions, %d tokens (vocab %d, %s)", regions_parquet, len(lengths), int(offsets[-1]),
             tokenizer.vocab_size, kind)
    return load_token_set(out_dir)


def _raw_to_npy(raw_path: Path, npy_path: Path, dtype: np.dtype, count: int) -> None:
    """Prefix the raw ids with a .npy header (the count is only known at the end)."""
    with open(npy_path, "wb") as out:
        np.lib.format.write_array_header_1_0(
            out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": (count,)})
        with open(raw_path, "rb") as raw:
            shutil.copyfileobj(raw, out, 1 << 24)
    raw_path.unlink()


def load_token_set(directory: str | Path) -> TokenSet:
    """Open a token set (tokens memory-mapped); inconsistent files are a clear error."""
    directory = Path(directory)
    missing = [n for n in TOKEN_FILES if not (directory / n).exists()]
    if missing:
        raise GenofmInputError(f"{directory}: not a complete token set, missing {', '.join(missing)}")
    try:
        tokens = np.load(directory / "tokens.npy", mmap_mode="r", allow_pickle=False)
        offsets = np.load(directory / "offsets.npy", allow_pickle=False)
    except ValueError as err:
        raise GenofmInputError(f"{directory}: unreadable token arrays: {err}") from err
    index = pq.read_table(directory / "index.parquet").to_pandas()
    if len(offsets) != len(index) + 1 or offsets[0] != 0 or offsets[-1] != len(tokens) or np.any(np.diff(offsets) < 0):
        raise GenofmInputError(f"{directory}: offsets.npy does not match tokens.npy and index.parquet")
    spec = json.loads((directory / "tokenizer_spec.json").read_text())
    return TokenSet(tokens=tokens, offsets=offsets, index=index, tokenizer=load_tokenizer_spec(spec, directory))
