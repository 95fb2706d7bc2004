"""The k-mer tokenizer: NT v2 ids, rules of DESIGN.md, HF EsmTokenizer parity, token files."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest

from genofm.errors import GenofmInputError
from genofm.tokenizer import CLS, KmerTokenizer
from genofm.tokens import load_token_set, tokenize_regions


def test_vocabulary_is_nucleotide_transformer_v2():
    tok = KmerTokenizer()
    assert tok.vocab_size == 4107
    assert tok.vocab[:6] == ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    assert tok.vocab[6:4102] == kmers
    assert tok.vocab[4102:] == ["A", "T", "C", "G", "N"]
    assert tok.dtype == np.uint16


def test_rules_of_the_design():
    tok = KmerTokenizer()
    ids = tok.encode("AAAAAAT")  # one 6-mer, then a leftover single base
    assert ids.tolist() == [CLS, tok.token_to_id["AAAAAA"], tok.token_to_id["T"]]
    # split at N: each N its own token, pieces cut left to right
    ids = tok.encode("ACGTACGTNNAC")
    tokens = [tok.vocab[i] for i in ids]
    assert tokens == ["<cls>", "ACGTAC", "G", "T", "N", "N", "A", "C"]
    # lowercase (soft-masked) is upper-cased; no <eos>
    assert tok.encode("acgtacgg").tolist() == tok.encode("ACGTACGG").tolist()
    assert tok.encode("").tolist() == [CLS]


def test_bad_character_names_sequence_and_position():
    with pytest.raises(GenofmInputError, match=r"'region7'.*'R' at position 4"):
        KmerTokenizer().encode("ACGRT", name="region7")


def test_bad_non_ascii_character_is_shown_as_it_is():
    with pytest.raises(GenofmInputError, match=r"'region7'.*'é' at position 4 \(U\+00E9\)") as err:
        KmerTokenizer().encode("ACGéT", name="region7")
    assert "'?'" not in str(err.value)
    with pytest.raises(GenofmInputError, match=r"byte 0xC3 \(not ASCII\) at position 2"):
        KmerTokenizer().encode("Aé".encode())


def test_bad_sequence_is_numbered_within_the_whole_batch():
    from genofm import tokenizer as tokenizer_module

    n = 3 * tokenizer_module._CHUNK_BASES // 1000  # several internal chunks
    sequences = ["ACGT" * 250] * n
    bad = n - 2
    sequences[bad] = "ACGT" * 100 + "X" + "ACGT" * 150
    with pytest.raises(GenofmInputError, match=rf"^sequence {bad + 1}: character 'X' at position 401 \(U\+0058\) "):
        KmerTokenizer().encode_batch(sequences)
    names = [f"r{i}" for i in range(n)]
    with pytest.raises(GenofmInputError, match=rf"^sequence {bad + 1} \('r{bad}'\): character 'X'"):
        KmerTokenizer().encode_batch(sequences, names)


@pytest.mark.parametrize("k,overlapping", [(6, False), (3, False), (1, False), (4, True), (6, True)])
def test_decode_roundtrip(k, overlapping):
    tok = KmerTokenizer(k=k, overlapping=overlapping)
    rng = random.Random(k)
    for _ in range(200):
        seq = "".join(rng.choice("ACGTACGTACGTN") for _ in range(rng.randint(0, 50)))
        assert tok.decode(tok.encode(seq)) == seq


def test_overlapping_kmers_are_dnabert_style():
    tok = KmerTokenizer(k=3, overlapping=True)
    tokens = [tok.vocab[i] for i in tok.encode("ACGTA", add_special_tokens=False)]
    assert tokens == ["ACG", "CGT", "GTA"]
    tokens = [tok.vocab[i] for i in tok.encode("ACGNAC", add_special_tokens=False)]
    assert tokens == ["ACG", "N", "A", "C"]


def test_single_nucleotide_vocabulary():
    tok = KmerTokenizer(k=1)
    assert tok.vocab == ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", "A", "T", "C", "G", "N"]
    assert [tok.vocab[i] for i in tok.encode("GATN", add_special_tokens=False)] == list("GATN")


def test_hugging_face_esm_tokenizer_gives_the_same_ids(tmp_path, chr20):
    transformers = pytest.importorskip("transformers")
    tok = KmerTokenizer()
    tok.save(tmp_path)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert type(hf).__name__ == "EsmTokenizer"
    rng = random.Random(0)
    sequences = ["".join(rng.choice("ACGTACGTACGTN") for _ in range(rng.randint(0, 80))) for _ in range(300)]
    with pysam.FastaFile(str(chr20)) as fa:  # real sequence, with its N runs and soft-masking
        for start in (0, 60_000, 1_000_000, 25_000_000, 62_000_000):
            sequences.append(fa.fetch("20", start, start + 3000).upper())
    for seq in sequences:
        assert tok.encode(seq).tolist() == hf(seq)["input_ids"], seq[:60]


def _write_regions(path, sequences):
    df = pd.DataFrame({"chrom": "c", "start": np.arange(len(sequences)) * 100, "end": 0, "strand": "+",
                       "name": [f"r{i}" for i in range(len(sequences))], "label": None,
                       "sequence": sequences})
    df["end"] = df["start"] + df["sequence"].str.len()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def test_token_set_roundtrip(tmp_path):
    sequences = ["ACGTACGTAC", "NNACGTTTGCA", "acgtnacgtacgt", "A"]
    _write_regions(tmp_path / "r.parquet", sequences)
    tok = KmerTokenizer()
    ts = tokenize_regions(tmp_path / "r.parquet", tok, tmp_path / "tokens", batch_rows=2)
    assert len(ts) == 4
    for i, seq in enumerate(sequences):
        assert ts.region(i).tolist() == tok.encode(seq).tolist()
        assert tok.decode(ts.region(i)) == seq.upper()
    assert ts.tokens.dtype == np.uint16
    assert list(ts.index["name"]) == ["r0", "r1", "r2", "r3"]
    assert (tmp_path / "tokens" / "vocab.txt").read_text().split("\n")[3] == "<cls>"


def test_token_set_bad_inputs_leave_nothing(tmp_path):
    _write_regions(tmp_path / "r.parquet", ["ACGT", "ACXT"])
    with pytest.raises(GenofmInputError, match=r"r1.*'X' at position 3"):
        tokenize_regions(tmp_path / "r.parquet", KmerTokenizer(), tmp_path / "tokens")
    assert not (tmp_path / "tokens").exists() or not any((tmp_path / "tokens").iterdir())
    _write_regions(tmp_path / "e.parquet", ["ACGT", ""])
    with pytest.raises(GenofmInputError, match=r"region 'r1' \(row 2\) has no sequence"):
        tokenize_regions(tmp_path / "e.parquet", KmerTokenizer(), tmp_path / "tokens")


def test_token_set_mismatch_is_detected(tmp_path):
    _write_regions(tmp_path / "r.parquet", ["ACGTACGT", "ACGT"])
    tokenize_regions(tmp_path / "r.parquet", KmerTokenizer(), tmp_path / "tokens")
    np.save(tmp_path / "tokens" / "offsets.npy", np.array([0, 2], dtype=np.int64))
    with pytest.raises(GenofmInputError, match="offsets.npy does not match"):
        load_token_set(tmp_path / "tokens")


@pytest.mark.parametrize("k,overlapping", [(6, False), (1, False), (3, True)])
def test_batch_equals_one_by_one(k, overlapping):
    tok = KmerTokenizer(k=k, overlapping=overlapping)
    rng = random.Random(3)
    sequences = ["".join(rng.choice("ACGTACGTN") for _ in range(rng.randint(0, 40))) for _ in range(300)]
    ids, offsets = tok.encode_batch(sequences)
    assert len(offsets) == len(sequences) + 1
    for i, seq in enumerate(sequences):
        assert ids[offsets[i]:offsets[i + 1]].tolist() == tok.encode(seq).tolist()


def test_large_batches_are_chunked_consistently(monkeypatch):
    import genofm.tokenizer as module

    monkeypatch.setattr(module, "_CHUNK_BASES", 100)
    tok = KmerTokenizer()
    rng = random.Random(5)
    sequences = ["".join(rng.choice("ACGTN") for _ in range(rng.randint(0, 90))) for _ in range(50)]
    ids, offsets = tok.encode_batch(sequences)
    assert len(offsets) == 51
    for i, seq in enumerate(sequences):
        assert ids[offsets[i]:offsets[i + 1]].tolist() == tok.encode(seq).tolist()


@pytest.mark.parametrize("k", range(1, 9))
def test_every_kmer_id_for_every_k(k):
    """First, last and some k-mers map to their vocabulary ids (k=8 reaches id 65541)."""
    tok = KmerTokenizer(k=k)
    kmers = [tok.vocab[i] for i in (tok.kmer_offset, tok.single_offset - 1)] if k > 1 else list("ATCG")
    rng = random.Random(k)
    kmers += ["".join(rng.choice("ACGT") for _ in range(k)) for _ in range(20)]
    for kmer in kmers:
        assert tok.encode(kmer, add_special_tokens=False).tolist() == [tok.token_to_id[kmer]]
        # the general path (an N in the batch) must agree with the block path
        ids, _ = tok.encode_batch([kmer, "N"], add_special_tokens=False)
        assert ids.tolist() == [tok.token_to_id[kmer], tok.token_to_id["N"]]
    assert tok.vocab_size == 6 + (4**k if k > 1 else 0) + 5
