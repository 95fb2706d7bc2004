"""Embedding extraction: one vector per region from a trained model.

Pooling over the tokens of a chosen layer: mean over real tokens, <cls> included, as in
Nucleotide Transformer's usage (default), the <cls> token, or a central window of tokens. Regions longer than the model's context are cut into windows
that overlap; each token's vector is averaged over the windows that hold it before pooling,
so a region that fits the context gives exactly its single-pass vector. The reverse strand
can be averaged in (tokenized afresh from the reverse complement). Regions are batched by
length and the matrix is written row by row into a .npy, so memory stays bounded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from .alignment import COMPLEMENT_CODES, AlignedColumns, padded_codes
from .atomic import atomic_paths
from .config import EmbedConfig
from .devices import bf16_autocast
from .errors import GenofmInputError
from .loading import load_model_and_tokenizer
from .model import DNALM
from .sequence import reverse_complement
from .tokenizer import CLS, PAD, KmerTokenizer

log = logging.getLogger(__name__)


def windows_of(body: np.ndarray, context: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) token ranges covering `body` with windows of at most `context` tokens."""
    if body.size <= context:
        return [(0, body.size)]
    step = max(1, context - overlap)
    starts = list(range(0, body.size - context, step)) + [body.size - context]
    return [(s, s + context) for s in starts]


class Embedder:
    def __init__(self, model: DNALM, tokenizer: KmerTokenizer, cfg: EmbedConfig, device="cpu"):
        self.model, self.tokenizer, self.cfg, self.device = model, tokenizer, cfg, torch.device(device)
        n = model.cfg.n_layers
        if not -1 <= cfg.layer <= n:
            raise GenofmInputError(f"layer {cfg.layer} does not exist: the model has layers 0..{n} (or -1, the output)")
        self.context = model.cfg.max_len - 1  # body tokens per window, after <cls>

    @torch.no_grad()
    def token_states(self, windows: list[np.ndarray], aligned: list[np.ndarray] | None = None) -> list[torch.Tensor]:
        """Hidden states (L_i + 1, D) of each window (<cls> first), one padded batch; `aligned`:
        each window's (L_i, S) alignment codes, for alignment-aware models."""
        length = max(w.size for w in windows) + 1
        ids = torch.full((len(windows), length), PAD, dtype=torch.long)
        ids[:, 0] = CLS
        for i, w in enumerate(windows):
            ids[i, 1:1 + w.size] = torch.from_numpy(w.astype(np.int64))
        codes = None if aligned is None else torch.from_numpy(padded_codes(aligned, length)).to(self.device)
        with bf16_autocast(self.device):
            out = self.model(ids.to(self.device), output_hidden_states=self.cfg.layer != -1, return_logits=False,
                             **({} if codes is None else {"aligned": codes}))
        states = out.last_hidden if self.cfg.layer == -1 else out.hidden_states[self.cfg.layer]
        states = states.float().cpu()
        return [states[i, :w.size + 1] for i, w in enumerate(windows)]

    def pool_region(self, body: np.ndarray, states: list[torch.Tensor], spans: list[tuple[int, int]]) -> torch.Tensor:
        """Average each token over the windows holding it, then pool the region."""
        if self.cfg.pooling == "cls":
            return torch.stack([s[0] for s in states]).mean(0)
        if len(states) == 1 and self.cfg.pooling == "mean":  # the region fits the context
            return states[0].mean(0)
        D = states[0].shape[-1]
        total = torch.zeros(body.size, D)
        count = torch.zeros(body.size, 1)
        for s, (a, b) in zip(states, spans):
            total[a:b] += s[1:]
            count[a:b] += 1
        per_token = total / count  # (L, D)
        if self.cfg.pooling == "center":
            half = self.cfg.center_tokens // 2
            mid = body.size // 2
            return per_token[max(0, mid - half):mid - half + self.cfg.center_tokens].mean(0)
        # mean over all real tokens, <cls> included, as Nucleotide Transformer's usage does
        cls = torch.stack([s[0] for s in states]).mean(0)
        return torch.cat([cls[None], per_token]).mean(0)

    def embed_bodies(self, bodies: list[np.ndarray], aligned: list[np.ndarray] | None = None) -> torch.Tensor:
        """(n, D) vectors of token bodies (no <cls>), windows batched by length; `aligned`: each
        body's (L, S) alignment codes (alignment-aware models)."""
        pieces = []  # (region, span, tokens)
        for r, body in enumerate(bodies):
            for a, b in windows_of(body, self.context, self.cfg.window_overlap):
                pieces.append((r, (a, b), body[a:b]))
        codes = None if aligned is None else [aligned[r][a:b] for r, (a, b), _ in pieces]
        order = sorted(range(len(pieces)), key=lambda i: pieces[i][2].size)
        states: list = [None] * len(pieces)
        batch: list[int] = []
        for i in order + [None]:
            if i is not None:
                width = pieces[i][2].size + 1
                if not batch or (len(batch) + 1) * width <= self.cfg.batch_tokens:
                    batch.append(i)
                    continue
            batch_codes = None if codes is None else [codes[j] for j in batch]
            for j, s in zip(batch, self.token_states([pieces[j][2] for j in batch], batch_codes)):
                states[j] = s
            batch = [i] if i is not None else []
        by_region: dict[int, list[int]] = {}
        for i, (r, _, _) in enumerate(pieces):
            by_region.setdefault(r, []).append(i)
        return torch.stack([self.pool_region(bodies[r], [states[i] for i in idx], [pieces[i][1] for i in idx])
                            for r, idx in sorted(by_region.items())])

    def embed_sequences(self, sequences: list[str], names: list[str] | None = None,
                        aligned: list[np.ndarray] | None = None) -> torch.Tensor:
        """(n, D) vectors of DNA sequences, averaged with the reverse strand if configured.
        `aligned`: each sequence's (len, S) alignment codes, base by base (alignment-aware
        models, single-nucleotide tokens)."""
        for i, seq in enumerate(sequences):
            if not seq:
                name = names[i] if names else i
                raise GenofmInputError(f"region {name!r} has no sequence to embed")
        ids, offsets = self.tokenizer.encode_batch(sequences, names, add_special_tokens=False)
        bodies = [ids[offsets[i]:offsets[i + 1]] for i in range(len(sequences))]
        if aligned is not None and any(a.shape[0] != b.size for a, b in zip(aligned, bodies)):
            raise GenofmInputError("aligned codes must cover each sequence base by base (single-nucleotide tokens)")
        vectors = self.embed_bodies(bodies, aligned)
        if self.cfg.rc_average:
            rc = [reverse_complement(s) for s in sequences]
            ids, offsets = self.tokenizer.encode_batch(rc, names, add_special_tokens=False)
            rc_aligned = None if aligned is None else [COMPLEMENT_CODES[a[::-1]] for a in aligned]
            rc_bodies = [ids[offsets[i]:offsets[i + 1]] for i in range(len(rc))]
            vectors = (vectors + self.embed_bodies(rc_bodies, rc_aligned)) / 2
        return vectors


def embed_regions(model_dir: str | Path, regions_parquet: str | Path, out_matrix: str | Path,
                  out_index: str | Path | None, cfg: EmbedConfig, device: str = "cpu",
                  shard: tuple[int, int] | None = None, alignment: str | Path | None = None) -> int:
    """Embed every region of a region set; writes the (n, D) .npy and its index parquet. With
    `shard` = (i, n): the i-th of n shards of the rows (whole chunks of chunk_rows, so that
    every batch is the one job's) into its own .npy, no index; `gather_embeddings` joins them.
    `alignment`: the genome's alignment arrays, which an alignment-aware model reads."""
    chunk_rows = cfg.chunk_regions
    model, tokenizer = load_model_and_tokenizer(model_dir, device)
    species = getattr(model.cfg, "aligned_species", [])
    if species and alignment is None:
        raise GenofmInputError(f"{model_dir}: an alignment-aware model ({', '.join(species)}) needs the genome's "
                               "alignment arrays")
    columns = AlignedColumns(alignment) if species else None
    embedder = Embedder(model, tokenizer, cfg, device)
    parquet = pq.ParquetFile(regions_parquet)
    n = parquet.metadata.num_rows
    if n == 0:
        raise GenofmInputError(f"{regions_parquet}: the region set is empty")
    rows = [batch.num_rows for batch in parquet.iter_batches(batch_size=chunk_rows, columns=["name"])]  # per chunk
    wanted = range(len(rows)) if shard is None else shard_chunks(len(rows), *shard, regions_parquet, chunk_rows)
    first, total = sum(rows[:wanted.start]), sum(rows[wanted.start:wanted.stop])
    started, done = time.perf_counter(), 0
    with atomic_paths(out_matrix, *([out_index] if shard is None else [])) as tmp_paths:
        matrix = np.lib.format.open_memmap(tmp_paths[0], mode="w+", dtype=np.dtype(cfg.dtype),
                                           shape=(total, model.cfg.d_model))
        read = ["name", "sequence"] + (["chrom", "start", "end", "strand"] if species else [])
        for i, batch in enumerate(parquet.iter_batches(batch_size=chunk_rows, columns=read)):
            if i not in wanted:
                continue
            names = [f"{name} in {regions_parquet}" for name in batch.column("name").to_pylist()]
            aligned = None
            if species:
                aligned = columns.region_codes(*(batch.column(c).to_pylist() for c in read[2:]), species)
            vectors = embedder.embed_sequences(batch.column("sequence").to_pylist(), names, aligned)
            matrix[done:done + len(vectors)] = vectors.numpy().astype(cfg.dtype)
            done += len(vectors)
            rate = done / (time.perf_counter() - started)
            log.info("embedded %d/%d regions (%.1f regions/s, ETA %.0f s)", first + done, first + total, rate,
                     (total - done) / rate)
        matrix.flush()
        del matrix
        if shard is None:
            write_embedding_index(regions_parquet, tmp_paths[1])
    return total


def shard_chunks(chunks: int, shard: int, shards: int, path, chunk_rows: int) -> range:
    if not 0 <= shard < shards or shards > chunks:
        raise GenofmInputError(f"{path}: {shards} shards, but the region set makes {chunks} chunk(s) of {chunk_rows} "
                               f"regions (embeddings.chunk_regions): set embeddings.shards to at most {chunks}")
    return range(shard * chunks // shards, (shard + 1) * chunks // shards)


def write_embedding_index(regions_parquet, path) -> None:
    index = pq.read_table(regions_parquet, columns=["chrom", "start", "end", "strand", "name", "label"])
    pq.write_table(index, path)


def gather_embeddings(parts: list[str | Path], regions_parquet: str | Path, out_matrix: str | Path,
                      out_index: str | Path) -> int:
    """Join the shards' matrices (in order) into the one job's .npy and write the index."""
    matrices = [np.load(p, mmap_mode="r", allow_pickle=False) for p in parts]
    n = pq.ParquetFile(regions_parquet).metadata.num_rows
    if sum(m.shape[0] for m in matrices) != n or len({(m.shape[1], m.dtype) for m in matrices}) != 1:
        raise GenofmInputError(f"the shards {[str(p) for p in parts]} do not make the {n} rows of {regions_parquet}")
    with atomic_paths(out_matrix, out_index) as (tmp_matrix, tmp_index):
        out = np.lib.format.open_memmap(tmp_matrix, mode="w+", dtype=matrices[0].dtype, shape=(n, matrices[0].shape[1]))
        done = 0
        for m in matrices:
            out[done:done + m.shape[0]] = m
            done += m.shape[0]
        out.flush()
        del out
        write_embedding_index(regions_parquet, tmp_index)
    return n


def load_embeddings(matrix_path: str | Path, index_path: str | Path):
    """(matrix, index DataFrame); a matrix that does not match its index is an error."""
    matrix = np.load(matrix_path, mmap_mode="r", allow_pickle=False)
    index = pq.read_table(index_path).to_pandas()
    if matrix.ndim != 2 or matrix.shape[0] != len(index):
        raise GenofmInputError(f"{matrix_path} has {matrix.shape[0] if matrix.ndim else 0} rows but "
                               f"{index_path} lists {len(index)} regions: they do not belong together")
    return matrix, index
