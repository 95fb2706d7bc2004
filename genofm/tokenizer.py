"""k-mer tokenizer with the Nucleotide Transformer v2 vocabulary layout (the default).

Vocabulary: ids 0-5 are ``<unk> <pad> <mask> <cls> <eos> <bos>``; then the 4**k k-mers in
``itertools.product("ATCG", repeat=k)`` order; then the single bases ``A T C G N``
(4107 tokens for k=6, identical ids to NT v2). For k=1 the k-mers *are* the single bases,
so the vocabulary is the specials plus ``A T C G N``.

Rules (DESIGN.md): split the sequence at each N; cut each piece into k-mers left to right;
a leftover shorter than k becomes single-base tokens; each N is its own token; ``<cls>`` first,
no ``<eos>``. Lowercase (soft-masked) bases are upper-cased; any other character is an error.
Overlapping k-mers (DNABERT-1 style: every start position of a piece) are an option.

Everything is vectorised with numpy: no Python loop per base.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import GenofmInputError
from .sequence import base_code_table

SPECIAL_TOKENS = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")
UNK, PAD, MASK, CLS, EOS, BOS = range(len(SPECIAL_TOKENS))
BASES = "ATCG"  # NT's order, which fixes the k-mer ids
SINGLES = "ATCGN"
SPEC_FORMAT = "genofm-kmer-tokenizer/1"

# byte -> base code (A=0 T=1 C=2 G=3 N=4), 255 for anything else; lowercase maps too.
# Applied with bytes.translate, which runs at memcpy speed.
_CODE_TABLE = base_code_table(SINGLES).tobytes()
_N = 4
_CHUNK_BASES = 1 << 18


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(starts - (ends - counts), counts)
    return np.arange(total, dtype=np.int64) + shift


def _kmer_values_at(codes: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """Base-4 values (uint16; 2k <= 16 bits) of the k-mers starting at `positions`.

    Two halves of at most 4 bases each come from uint8 prefix values computed for every
    position (a few cheap passes), then two gathers at the wanted positions. Windows holding
    an N (code 4) would get meaningless values; callers never ask for them.
    """
    head_len = (k + 1) // 2
    prefixes = [codes]  # prefixes[s - 1][i]: value of the s bases starting at i
    for s in range(2, head_len + 1):
        prefixes.append((prefixes[-1][:-1] << 2) | codes[s - 1:])
    values = prefixes[head_len - 1][positions].astype(np.uint16)
    tail_len = k - head_len
    if tail_len:
        values = (values << (2 * tail_len)) | prefixes[tail_len - 1][positions + head_len]
    return values


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything needed to rebuild a tokenizer; saved as tokenizer_spec.json beside tokens."""

    k: int = 6
    overlapping: bool = False
    add_cls: bool = True
    add_eos: bool = False
    format: str = SPEC_FORMAT


class KmerTokenizer:
    def __init__(self, k: int = 6, overlapping: bool = False, add_cls: bool = True,
                 add_eos: bool = False):
        if not 1 <= k <= 8:
            raise GenofmInputError(f"tokenizer k must be between 1 and 8, got {k}")
        self.spec = TokenizerSpec(k=k, overlapping=overlapping, add_cls=add_cls, add_eos=add_eos)
        self.k = k
        self.overlapping = overlapping
        n_kmers = 4**k if k > 1 else 0
        self.kmer_offset = len(SPECIAL_TOKENS)
        self.single_offset = self.kmer_offset + n_kmers
        kmers = ["".join(p) for p in itertools.product(BASES, repeat=k)] if k > 1 else []
        self.vocab: list[str] = [*SPECIAL_TOKENS, *kmers, *SINGLES]
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        # ids of single bases, indexed by base code; for k=1 the k-mer ids are these too
        self._single_ids = np.arange(self.single_offset, self.single_offset + 5, dtype=np.int64)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def dtype(self) -> np.dtype:
        """Smallest unsigned dtype that holds every id (uint16 for k <= 7)."""
        return np.dtype(np.uint16 if self.vocab_size <= 65535 else np.uint32)

    # --- encoding -------------------------------------------------------------------------

    def encode(self, sequence: str | bytes, add_special_tokens: bool = True,
               name: str | None = None) -> np.ndarray:
        """Token ids (int64) of one sequence; `name` only labels error messages."""
        ids, _ = self.encode_batch([sequence], [name], add_special_tokens, dtype=np.int64)
        return ids

    def encode_batch(self, sequences, names=None, add_special_tokens: bool = True,
                     dtype=None) -> tuple[np.ndarray, np.ndarray]:
        """Ids of many sequences at once: (concatenated ids, offsets of length n + 1).

        Sequences without N are tokenized as 2-D blocks, one per distinct length (a tiling
        is a single block); sequences with N go through the general piece-wise path.
        """
        sequences = sequences if isinstance(sequences, list) else list(sequences)
        names = None if names is None else list(names)
        # "replace" turns each non-ASCII character into one '?' (an invalid byte), so positions
        # still match the str; error messages show the original character.
        raws = [s.encode("ascii", "replace") if isinstance(s, str) else bytes(s) for s in sequences]
        return self._encode_raws(raws, sequences, names, add_special_tokens, dtype, 0)

    def _encode_raws(self, raws, sequences, names, add_special_tokens, dtype, first: int):
        """encode_batch of the encoded `raws`; `sequences` are the originals (for messages),
        `first` the batch index of raws[0]."""
        lengths = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
        if lengths.sum() > _CHUNK_BASES and len(raws) > 1:
            return self._encode_in_chunks(raws, sequences, lengths, names, add_special_tokens, dtype, first)
        seq_starts = np.concatenate([[0], np.cumsum(lengths)])
        codes = np.frombuffer(b"".join(raws).translate(_CODE_TABLE), dtype=np.uint8)
        bad = np.flatnonzero(codes == 255)
        if bad.size:
            i = int(np.searchsorted(seq_starts, bad[0], side="right") - 1)
            pos = int(bad[0] - seq_starts[i])
            name = names[i] if names is not None else None
            where = f"sequence {first + i + 1}" + (f" ({name!r})" if name else "")
            original = sequences[i]
            if isinstance(original, str):
                char = original[pos]
                what = f"character {char!r} at position {pos + 1} (U+{ord(char):04X})"
            elif raws[i][pos] >= 0x80:
                what = f"byte 0x{raws[i][pos]:02X} (not ASCII) at position {pos + 1}"
            else:
                char = chr(raws[i][pos])
                what = f"character {char!r} at position {pos + 1} (U+{ord(char):04X})"
            raise GenofmInputError(f"{where}: {what} is not one of ACGTN (upper or lower case)")
        head = int(add_special_tokens and self.spec.add_cls)
        tail = int(add_special_tokens and self.spec.add_eos)
        dtype = dtype or self.dtype

        n_pos = np.flatnonzero(codes == _N)
        has_n = np.zeros(len(raws), dtype=bool)
        has_n[np.searchsorted(seq_starts, n_pos, side="right") - 1] = True
        groups = []  # (rows, flat ids of those rows in order, token count of each row)
        for length in np.unique(lengths[~has_n]):
            rows = np.flatnonzero(~has_n & (lengths == length))
            block = self._encode_block(codes, seq_starts[rows], int(length), head, tail, dtype)
            groups.append((rows, block.ravel(), np.full(rows.size, block.shape[1])))
        if has_n.any():
            rows = np.flatnonzero(has_n)
            sub_codes = np.concatenate([codes[seq_starts[i]:seq_starts[i + 1]] for i in rows])
            ids, counts = self._encode_codes(sub_codes, np.concatenate([[0], np.cumsum(lengths[rows])]))
            groups.append((rows, *self._add_special_tokens(ids, counts, head, tail, dtype)))

        counts = np.zeros(len(raws), dtype=np.int64)
        for rows, _, row_counts in groups:
            counts[rows] = row_counts
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if len(groups) == 1:  # rows 0..n-1 in order: nothing to scatter
            return groups[0][1].astype(dtype, copy=False), offsets
        out = np.empty(int(offsets[-1]), dtype=dtype)
        for rows, ids, row_counts in groups:
            out[_ranges(offsets[rows], row_counts)] = ids
        return out, offsets

    def _encode_block(self, codes, row_starts, length, head, tail, dtype) -> np.ndarray:
        """Token rows (rows x width) of N-free sequences of one length: k-mers by reshaping."""
        k = self.k
        if row_starts.size and row_starts[-1] - row_starts[0] == (row_starts.size - 1) * length:
            block = codes[row_starts[0]:row_starts[0] + row_starts.size * length].reshape(row_starts.size, length)
        else:
            block = codes[row_starts[:, None] + np.arange(length)]
        if k == 1 or length < k:
            n_kmers, singles = 0, block
        elif self.overlapping:
            n_kmers, singles = length - k + 1, block[:, :0]
            values = block[:, :n_kmers].astype(np.uint16)
            for j in range(1, k):
                values = (values << 2) | block[:, j:j + n_kmers]
        else:
            n_kmers = length // k
            bases = block[:, :n_kmers * k].reshape(block.shape[0], n_kmers, k)
            values = bases[:, :, 0].astype(np.uint16)
            for j in range(1, k):
                values = (values << 2) | bases[:, :, j]
            singles = block[:, n_kmers * k:]
        out = np.empty((block.shape[0], head + n_kmers + singles.shape[1] + tail), dtype=dtype)
        if head:
            out[:, 0] = CLS
        if n_kmers:
            out[:, head:head + n_kmers] = values.astype(np.int64) + self.kmer_offset  # uint16 would wrap at k=8
        out[:, head + n_kmers:out.shape[1] - tail] = self._single_ids[singles]
        if tail:
            out[:, -1] = EOS
        return out

    @staticmethod
    def _add_special_tokens(ids, counts, head, tail, dtype):
        """Insert <cls>/<eos> around each sequence's ids: (flat ids, counts with them)."""
        offsets = np.concatenate([[0], np.cumsum(counts + head + tail)])
        out = np.empty(int(offsets[-1]), dtype=dtype)
        token_seq = np.repeat(np.arange(len(counts)), counts)
        out[np.arange(ids.size) + head * (token_seq + 1) + tail * token_seq] = ids
        if head:
            out[offsets[:-1]] = CLS
        if tail:
            out[offsets[1:] - 1] = EOS
        return out, counts + head + tail

    def _encode_in_chunks(self, raws, sequences, lengths, names, add_special_tokens, dtype, first):
        """encode_batch over groups of ~_CHUNK_BASES bases: small temporaries stay in cache
        and in the allocator's pool, which is faster than one pass over a huge batch."""
        bounds = np.searchsorted(np.cumsum(lengths), np.arange(_CHUNK_BASES, lengths.sum(), _CHUNK_BASES))
        bounds = np.unique(np.concatenate([[0], np.maximum(bounds, 1), [len(raws)]]))
        parts = [self._encode_raws(raws[lo:hi], sequences[lo:hi], names[lo:hi] if names is not None else None,
                                   add_special_tokens, dtype, first + int(lo))
                 for lo, hi in zip(bounds[:-1], bounds[1:])]
        ids = np.concatenate([p[0] for p in parts])
        sizes = np.concatenate([np.diff(p[1]) for p in parts])
        return ids, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def _encode_codes(self, codes: np.ndarray, seq_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, token count of each sequence) for concatenated sequences.

        Work is per piece (a maximal run without N inside one sequence) and per token, never a
        Python loop per base: a piece starts at a sequence start or after an N and stops at
        the next N or sequence end; its k-mers come first, then its leftover single bases.
        """
        n, k = codes.size, self.k
        n_pos = np.flatnonzero(codes == _N)
        starts = np.union1d(seq_starts[:-1], n_pos + 1)
        starts = starts[starts < n]
        next_n = np.append(n_pos, n)[np.searchsorted(n_pos, starts, side="left")]
        seq_ends = seq_starts[1:]
        next_end = seq_ends[np.searchsorted(seq_ends, starts, side="right")]
        ends = np.minimum(next_n, next_end)
        starts, ends = starts[ends > starts], ends[ends > starts]
        lengths = ends - starts
        if k == 1:
            n_kmers = np.zeros_like(lengths)
        elif self.overlapping:
            n_kmers = np.where(lengths >= k, lengths - k + 1, 0)
        else:
            n_kmers = lengths // k
        n_singles = np.where(n_kmers > 0, 0 if self.overlapping else lengths - n_kmers * k, lengths)

        # Output slots: pieces and N tokens ("units") in position order, each piece's tokens
        # contiguous, so every token's destination follows from its unit's offset.
        unit_start = np.concatenate([starts, n_pos])
        unit_tokens = np.concatenate([n_kmers + n_singles, np.ones(n_pos.size, dtype=np.int64)])
        order = np.argsort(unit_start, kind="stable")
        cum = np.concatenate([[0], np.cumsum(unit_tokens[order])])
        unit_offset = np.empty_like(unit_tokens)
        unit_offset[order] = cum[:-1]
        piece_offset, n_offset = unit_offset[: starts.size], unit_offset[starts.size:]

        ids = np.empty(int(cum[-1]), dtype=np.int32)
        if n_kmers.any():
            within = _ranges(np.zeros_like(n_kmers), n_kmers)
            kmer_pos = starts.repeat(n_kmers) + within * (1 if self.overlapping else k)
            ids[piece_offset.repeat(n_kmers) + within] = self.kmer_offset + _kmer_values_at(codes, kmer_pos, k).astype(np.int64)
        single_pos = _ranges(ends - n_singles, n_singles)
        ids[_ranges(piece_offset + n_kmers, n_singles)] = self._single_ids[codes[single_pos]]
        ids[n_offset] = self._single_ids[_N]
        counts = np.diff(cum[np.searchsorted(unit_start[order], seq_starts)])
        return ids, counts

    # --- decoding -------------------------------------------------------------------------

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Sequence of the ids; for overlapping k-mers, consecutive k-mers share k-1 bases."""
        out: list[str] = []
        prev_kmer = False
        for i in np.asarray(ids, dtype=np.int64).tolist():
            if not 0 <= i < self.vocab_size:
                raise GenofmInputError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            token = self.vocab[i]
            if i < self.kmer_offset:
                if not skip_special_tokens:
                    out.append(token)
                prev_kmer = False
                continue
            is_kmer = self.k > 1 and i < self.single_offset
            out.append(token[-1] if (self.overlapping and is_kmer and prev_kmer) else token)
            prev_kmer = is_kmer
        return "".join(out)

    # --- files ----------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write tokenizer_spec.json (the spec) and the Hugging Face files (vocab.txt, config)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tokenizer_spec.json").write_text(
            json.dumps({**asdict(self.spec), "vocab_size": self.vocab_size}, indent=2) + "\n")
        self.save_hf_vocab(directory)

    def save_hf_vocab(self, directory: str | Path) -> None:
        """vocab.txt + tokenizer_config.json that transformers' EsmTokenizer loads with the
        same ids (non-overlapping k-mers only: EsmTokenizer cannot make overlapping ones)."""
        directory = Path(directory)
        (directory / "vocab.txt").write_text("\n".join(self.vocab) + "\n")
        config = {
            "tokenizer_class": "EsmTokenizer",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
            "cls_token": "<cls>", "eos_token": "<eos>" if self.spec.add_eos else None,
            "model_max_length": 1_000_000_000,
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def from_spec(cls, spec: TokenizerSpec | dict) -> "KmerTokenizer":
        spec = spec if isinstance(spec, dict) else asdict(spec)
        return cls(k=int(spec["k"]), overlapping=bool(spec["overlapping"]),
                   add_cls=bool(spec.get("add_cls", True)), add_eos=bool(spec.get("add_eos", False)))

    @classmethod
    def load(cls, path: str | Path) -> "KmerTokenizer":
        """From a tokenizer_spec.json, or a directory holding one."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer_spec.json"
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise GenofmInputError(f"{path}: cannot read tokenizer spec: {err}") from err
        if spec.get("format") != SPEC_FORMAT:
            raise GenofmInputError(f"{path}: not a genofm tokenizer spec (format {spec.get('format')!r})")
        return cls.from_spec(spec)
