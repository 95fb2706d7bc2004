"""BPE tokenization trained by the workflow (as DNABERT-2's): Hugging Face `tokenizers` learns
byte-pair merges on the region sets a config names, and the result is a tokenizer.json that
genofm (`genofm.subword.SubwordTokenizer`) and transformers read with the same ids.

The layout is genofm's: ids 0-5 are its special tokens <unk> <pad> <mask> <cls> <eos> <bos>,
then the alphabet A C G N T (every one present even if the training sequences lack it), then
one token per learnt merge, in the order they were learnt. There is no normaliser and no
pre-tokenizer (each region's sequence is one word, as in DNABERT-2's tokenizer.json); genofm
upper-cases sequences before they reach the tokenizer. The post-processor puts <cls> first,
so a transformers call with its default add_special_tokens=True gives genofm's ids.

Training is deterministic: the same sequences and settings give the same tokenizer.json bytes.
Sequences stream from the region parquet files batch by batch; `tokenizers` keeps one count
per distinct sequence, so memory grows with the training bases, not with a second copy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq

from .atomic import atomic_path
from .errors import GenofmInputError
from .tokenizer import CLS, SPECIAL_TOKENS, UNK

ALPHABET = "ACGTN"
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + len(ALPHABET)

log = logging.getLogger(__name__)


def region_sequences(parquets: list[str | Path], batch_rows: int = 10_000):
    """Upper-cased region sequences of the parquet files, streamed; other letters than ACGTN
    are an error naming the file and region."""
    allowed = set(ALPHABET)
    for parquet in map(Path, parquets):
        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=batch_rows, columns=["name", "sequence"]):
            for name, seq in zip(batch.column("name").to_pylist(), batch.column("sequence").to_pylist()):
                seq = (seq or "").upper()
                bad = set(seq) - allowed
                if bad:
                    raise GenofmInputError(f"{parquet}: region {name!r} holds {sorted(bad)[0]!r}, not one of ACGTN")
                if seq:
                    yield seq


def train_bpe(parquets: list[str | Path], vocab_size: int = 4096, min_frequency: int = 2):
    """A `tokenizers.Tokenizer` (BPE) learnt on the region sets' sequences, in genofm's layout."""
    from tokenizers import Tokenizer, models, processors, trainers

    if vocab_size < MIN_VOCAB_SIZE:
        raise GenofmInputError(f"tokenizer.vocab_size {vocab_size} is below {MIN_VOCAB_SIZE}: the special tokens "
                               f"({len(SPECIAL_TOKENS)}) and the bases {', '.join(ALPHABET)} alone need that many")
    if not parquets:
        raise GenofmInputError("the BPE tokenizer has no region set to learn from (tokenizer.train_sets)")
    seen = {"sequences": 0, "bases": 0}

    def counted():
        for seq in region_sequences(parquets):
            seen["sequences"] += 1
            seen["bases"] += len(seq)
            yield seq

    bpe = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS[UNK]))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), initial_alphabet=list(ALPHABET),
                                  show_progress=False)
    bpe.train_from_iterator(counted(), trainer)
    if not seen["sequences"]:
        raise GenofmInputError(f"no sequence to learn the BPE tokenizer from in {', '.join(map(str, parquets))}")
    # <cls> first and nothing at the end, as genofm's tokenizers do
    bpe.post_processor = processors.TemplateProcessing(single=f"{SPECIAL_TOKENS[CLS]} $A",
                                                       special_tokens=[(SPECIAL_TOKENS[CLS], CLS)])
    if bpe.get_vocab_size() != vocab_size:
        raise GenofmInputError(f"tokenizer.vocab_size {vocab_size}: the training sequences ({seen['bases']:,} bases "
                               f"in {', '.join(map(str, parquets))}) give only {bpe.get_vocab_size()} tokens with "
                               f"tokenizer.min_frequency {min_frequency}; lower either or train on more sequence")
    log.info("BPE: %d tokens learnt from %d sequences (%s bases)", vocab_size, seen["sequences"],
             f"{seen['bases']:,}")
    return bpe


def write_bpe(parquets: list[str | Path], out_path: str | Path, vocab_size: int = 4096,
              min_frequency: int = 2) -> Path:
    """Train (train_bpe) and write tokenizer.json atomically; returns its path."""
    bpe = train_bpe(parquets, vocab_size, min_frequency)
    with atomic_path(Path(out_path)) as tmp:
        tmp.write_text(bpe.to_str(pretty=True))
    return Path(out_path)


def bases_per_token(tokenizer, sequences: list[str]) -> float:
    """Mean bases per token (<cls> not counted): how much a BPE vocabulary compresses DNA."""
    ids, offsets = tokenizer.encode_batch(sequences, add_special_tokens=False)
    return sum(map(len, sequences)) / max(int(offsets[-1]), 1)
