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

SPECIAL_TOKENS = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")
UNK, PAD, MASK, CLS, EOS, BOS = range(len(SPECIAL_TOKENS))
BASES = "ATCG"  # NT's order, which fixes the k-mer ids
SINGLES = "ATCGN"
SPEC_FORMAT = "genofm-kmer-tokenizer/1"

# byte -> base code (A=0 T=1 C=2 G=3 N=4), 255 for anything else; lowercase maps too.
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(SINGLES):
    _CODE[ord(_b)] = _i
    _CODE[ord(_b.lower())] = _i
_N = 4


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
        self._powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)

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
        raw = sequence.encode("ascii", "replace") if isinstance(sequence, str) else sequence
        codes = _CODE[np.frombuffer(raw, dtype=np.uint8)]
        bad = np.flatnonzero(codes == 255)
        if bad.size:
            pos = int(bad[0])
            where = f"sequence {name!r}" if name else "sequence"
            raise GenofmInputError(
                f"{where}: character {chr(raw[pos])!r} at position {pos + 1} is not one of "
                f"ACGTN (upper or lower case); {bad.size} such character(s) in all")
        ids = self._encode_codes(codes)
        if add_special_tokens:
            head = [CLS] if self.spec.add_cls else []
            tail = [EOS] if self.spec.add_eos else []
            if head or tail:
                ids = np.concatenate([np.array(head, np.int64), ids, np.array(tail, np.int64)])
        return ids

    def _encode_codes(self, codes: np.ndarray) -> np.ndarray:
        n, k = codes.size, self.k
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        is_n = codes == _N
        pos = np.arange(n)
        # piece = maximal run without N; offset within it and its length, for every base
        prev_n = np.maximum.accumulate(np.where(is_n, pos, -1))
        next_n = np.minimum.accumulate(np.where(is_n, pos, n)[::-1])[::-1]
        offset = pos - prev_n - 1
        piece_len = next_n - prev_n - 1
        if self.overlapping:
            kmer_start = ~is_n & (offset + k <= piece_len)
            single = ~is_n & (piece_len < k)
        else:
            kmer_start = ~is_n & (offset % k == 0) & (offset + k <= piece_len)
            single = ~is_n & (offset >= (piece_len // k) * k)
        if k == 1:
            single = ~is_n
            kmer_start[:] = False
        ids = np.empty(n, dtype=np.int64)
        starts = np.flatnonzero(kmer_start)
        if starts.size:
            window = codes[starts[:, None] + np.arange(k)].astype(np.int64)
            ids[starts] = self.kmer_offset + window @ self._powers
        ids[single] = self._single_ids[codes[single]]
        ids[is_n] = self._single_ids[_N]
        return ids[kmer_start | single | is_n]

    def encode_batch(self, sequences, names=None) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated ids (self.dtype) and offsets (int64, len n+1) of many sequences."""
        names = names if names is not None else [None] * len(sequences)
        parts = [self.encode(s, name=nm).astype(self.dtype) for s, nm in zip(sequences, names)]
        lengths = np.fromiter((p.size for p in parts), dtype=np.int64, count=len(parts))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)
        return ids, offsets

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
