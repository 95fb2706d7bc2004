"""A checkpoint's own subword tokenizer (BPE as in DNABERT-2, WordPiece, Unigram: its
tokenizer.json, run by Hugging Face `tokenizers`) in genofm's id layout; also the BPE tokenizer
the workflow trains itself (`genofm.bpe`), whose ids already are genofm's, saved with its token
sets and models (`save`, `load`).

genofm's stages speak ids whose first six are its special tokens (`genofm.tokenizer`: <unk>
<pad> <mask> <cls> <eos> <bos>). `SubwordTokenizer` keeps that layout and appends the
checkpoint's other tokens in the checkpoint's id order, so `genofm.hf_lm.MappedLM` maps ids
to the checkpoint's by token string exactly as it does for base and k-mer vocabularies, and
embedding, probes, fine-tuning and the attention figure run unchanged. Tokens hold a varying
number of bases: variant scoring reads each token's span (`spans_batch`) and scores a masked
model by pseudo-log-likelihood over the tokens covering the variant (`genofm.pll`).

Sequences are upper-cased and must be A/C/G/T/N (as for the k-mer tokenizer); a sequence the
tokenizer cannot cover base for base (it drops a character it has no token for) is an error
naming the sequence, never a silent gap. Like genofm's other tokenizers, <cls> comes first and
no end token is added (the checkpoint's own post-processing, e.g. BERT's trailing [SEP], is not
applied); tests compare with the checkpoint's tokenizer called the same way.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import GenofmInputError
from .tokenizer import CLS, SPECIAL_TOKENS, UNK

_ALLOWED = frozenset("ACGTN")
SUBWORD_FORMAT = "genofm-subword-tokenizer/1"


@dataclass(frozen=True)
class SubwordSpec:
    """What identifies a subword tokenizer (saved as tokenizer_spec.json beside tokenizer.json).

    k and overlapping are those of a tokenizer whose tokens hold one base or more (what window
    sizing and init_from compare); sha256 is that of the tokenizer's JSON, so two token sets
    or a model and its token sets agree only if they were made by the same tokenizer."""

    kind: str
    vocab_size: int
    sha256: str
    k: int = 1
    overlapping: bool = False
    add_cls: bool = True
    add_eos: bool = False
    format: str = SUBWORD_FORMAT


class SubwordTokenizer:
    k = 1  # window sizing: a token holds at least one base, so n bases never need more than n tokens
    overlapping = False
    kmer_offset = len(SPECIAL_TOKENS)  # the first id that is not a special token (masking draws from here on)

    def __init__(self, hf_tokenizer, source: str):
        """`hf_tokenizer`: the checkpoint's fast (tokenizers-backed) tokenizer."""
        backend = copy.deepcopy(hf_tokenizer.backend_tokenizer)
        backend.no_truncation()
        backend.no_padding()
        self.backend, self.source = backend, source
        self.kind = type(backend.model).__name__  # BPE, WordPiece, Unigram, WordLevel
        specials = set(hf_tokenizer.all_special_tokens)
        theirs = sorted((i, t) for t, i in hf_tokenizer.get_vocab().items() if t not in specials)
        self.vocab: list[str] = [*SPECIAL_TOKENS, *(t for _, t in theirs)]
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        self.hf_ids = np.array([i for i, _ in theirs], dtype=np.int64)  # the checkpoint's id of ours 6..
        # checkpoint id -> ours; the checkpoint's special tokens (its <unk> for an N it has no token for) -> <unk>
        self.to_ours = np.full(max(hf_tokenizer.get_vocab().values()) + 1, UNK, dtype=np.int64)
        self.to_ours[self.hf_ids] = np.arange(len(SPECIAL_TOKENS), len(self.vocab))
        self.check_alphabet()
        self.json = backend.to_str(pretty=True)  # what save() writes as tokenizer.json
        self.spec = SubwordSpec(kind=self.kind, vocab_size=self.vocab_size,
                                sha256=hashlib.sha256(self.json.encode()).hexdigest())

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.vocab_size <= 65535 else np.uint32)

    @property
    def description(self) -> dict:
        return {"subword": self.kind, "vocab_size": self.vocab_size}

    def check_alphabet(self) -> None:
        for base in "ACGT":
            ids, _ = self.spans_one(base * 4, f"the probe {base * 4}")
            if (ids == UNK).any():
                raise GenofmInputError(f"{self.source}: the checkpoint's tokenizer has no token for {base!r}; "
                                       "genofm needs a DNA tokenizer that encodes A, C, G and T")

    def spans_one(self, sequence: str, name) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (ours) of one sequence and each token's (start, end) in bases, (n, 2)."""
        return self.spans_batch([sequence], [name])[0]

    def spans_batch(self, sequences: list[str], names=None) -> list[tuple[np.ndarray, np.ndarray]]:
        upper = [s.upper() for s in sequences]
        for i, seq in enumerate(upper):
            bad = set(seq) - _ALLOWED
            if bad:
                where = min(seq.index(c) for c in bad)
                raise GenofmInputError(f"sequence {names[i] if names else i}: character {sequences[i][where]!r} at "
                                       f"position {where + 1} is not A/C/G/T/N")
        out = []
        for i, (seq, encoding) in enumerate(zip(upper, self.backend.encode_batch(upper, add_special_tokens=False))):
            spans = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
            ends = np.concatenate([[0], spans[:, 1]])
            starts = np.append(spans[:, 0], len(seq))
            if (starts != ends).any():  # a base the tokenizer dropped: no token covers it
                gap = int(ends[np.flatnonzero(starts != ends)[0]])
                raise GenofmInputError(f"sequence {names[i] if names else i}: the checkpoint's tokenizer "
                                       f"({self.source}) leaves base {gap + 1} ({seq[gap]!r}) without a token; "
                                       "it cannot encode this sequence")
            out.append((self.to_ours[np.array(encoding.ids, dtype=np.int64)], spans))
        return out

    def encode(self, sequence: str, add_special_tokens: bool = True, name=None) -> np.ndarray:
        ids, _ = self.encode_batch([sequence], [name] if name else None, add_special_tokens, dtype=np.int64)
        return ids

    def encode_batch(self, sequences, names=None, add_special_tokens: bool = True,
                     dtype=None) -> tuple[np.ndarray, np.ndarray]:
        """(concatenated ids, offsets of length n + 1), as KmerTokenizer.encode_batch."""
        head = [CLS] if add_special_tokens else []
        pieces = [np.concatenate([head, ids]) for ids, _ in self.spans_batch(list(sequences), names)]
        offsets = np.cumsum([0] + [p.size for p in pieces])
        ids = np.concatenate(pieces) if pieces else np.zeros(0)
        return ids.astype(dtype or self.dtype), offsets

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """The bases of the ids (each token's string; special tokens dropped unless asked)."""
        out = []
        for i in np.asarray(ids, dtype=np.int64).tolist():
            if not 0 <= i < self.vocab_size:
                raise GenofmInputError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            if i >= self.kmer_offset or not skip_special_tokens:
                out.append(self.vocab[i])
        return "".join(out)

    # --- files ----------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """tokenizer_spec.json (the spec), vocab.txt (our ids' tokens, one a line) and the
        Hugging Face files (tokenizer.json, tokenizer_config.json)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tokenizer_spec.json").write_text(json.dumps(asdict(self.spec), indent=2) + "\n")
        (directory / "vocab.txt").write_text("\n".join(self.vocab) + "\n")
        self.save_hf_vocab(directory)

    def save_hf_vocab(self, directory: str | Path) -> None:
        """tokenizer.json + tokenizer_config.json, which transformers' AutoTokenizer loads as a
        PreTrainedTokenizerFast (genofm-trained BPE: the same ids as ours, <cls> first)."""
        if (self.hf_ids != np.arange(len(SPECIAL_TOKENS), self.vocab_size)).any():
            raise GenofmInputError(f"{self.source}: its ids differ from genofm's layout; only a tokenizer with "
                                   "genofm's special tokens first (a BPE trained by genofm) is saved")
        directory = Path(directory)
        (directory / "tokenizer.json").write_text(self.json)
        names = ("unk", "pad", "mask", "cls", "eos", "bos")
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1_000_000_000,
                  **{f"{name}_token": token for name, token in zip(names, SPECIAL_TOKENS)}}
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, spec: dict | None = None) -> "SubwordTokenizer":
        """From a tokenizer.json with genofm's special tokens first (genofm.bpe), or a directory
        holding one (a token set, a model trained here); `spec` (else a tokenizer_spec.json beside
        it) must match it."""
        from transformers import PreTrainedTokenizerFast

        path = Path(path)
        directory, path = (path.parent, path) if path.suffix == ".json" else (path, path / "tokenizer.json")
        if not path.exists():
            raise GenofmInputError(f"{directory}: no tokenizer.json (the subword tokenizer of these tokens)")
        names = ("unk", "pad", "mask", "cls", "eos", "bos")
        hf_tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path),
                                               **{f"{name}_token": t for name, t in zip(names, SPECIAL_TOKENS)})
        if [hf_tokenizer.convert_ids_to_tokens(i) for i in range(len(SPECIAL_TOKENS))] != list(SPECIAL_TOKENS):
            raise GenofmInputError(f"{path}: the first ids are not genofm's special tokens {', '.join(SPECIAL_TOKENS)}")
        tokenizer = cls(hf_tokenizer, str(path))
        if spec is None:
            spec_path = directory / "tokenizer_spec.json"
            spec = json.loads(spec_path.read_text()) if spec_path.exists() else None
        if spec is not None and spec.get("sha256") != tokenizer.spec.sha256:
            raise GenofmInputError(f"{path} is not the tokenizer these tokens or weights were made with "
                                   f"(sha256 {tokenizer.spec.sha256[:12]}, expected {str(spec.get('sha256'))[:12]})")
        return tokenizer


def load_tokenizer_spec(spec: dict, directory: str | Path):
    """The tokenizer a spec names: k-mers from the spec itself, a subword tokenizer from the
    tokenizer.json in `directory` (checked against the spec)."""
    from .tokenizer import KmerTokenizer

    if spec.get("format") == SUBWORD_FORMAT:
        return SubwordTokenizer.load(directory, spec)
    return KmerTokenizer.from_spec(spec)
