"""A checkpoint's own subword tokenizer (BPE as in DNABERT-2, WordPiece, Unigram: its
tokenizer.json, run by Hugging Face `tokenizers`) in genofm's id layout.

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

import numpy as np

from .errors import GenofmInputError
from .tokenizer import CLS, SPECIAL_TOKENS, UNK

_ALLOWED = frozenset("ACGTN")


class SubwordTokenizer:
    k = 1  # window sizing: a token holds at least one base, so n bases never need more than n tokens
    overlapping = False

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
