"""DNA sequence primitives, the one home of each: reverse complement (str and bytes, and of
base codes), base-code tables, IUPAC ambiguity codes and the genetic code."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

BASES = "ACGT"  # the order of base codes A=0 C=1 G=2 T=3, and of codons in arrays (CODONS)
VALID_BASES = b"ACGTNacgtn"  # bases a genofm reference may hold (soft-masked: lower case)
IUPAC_AMBIGUITY = "RYSWKMBDHVryswkmbdhv"  # IUPAC ambiguity codes other than N, upper then lower case
IUPAC_TO_N = bytes.maketrans(IUPAC_AMBIGUITY.encode(), b"N" * 10 + b"n" * 10)  # for bytes.translate; case kept

# Complement of A C G T N (either case); any other character is left as it is.
COMPLEMENT_TABLE = bytes.maketrans(b"ACGTNacgtn", b"TGCANtgcan")  # bytes.translate table; index it by a byte
_COMPLEMENT_STR = str.maketrans("ACGTNacgtn", "TGCANtgcan")

Seq = TypeVar("Seq", str, bytes, bytearray)


def complement(seq: Seq) -> Seq:
    """The complementary bases, in the same order (str, bytes or bytearray)."""
    return seq.translate(_COMPLEMENT_STR if isinstance(seq, str) else COMPLEMENT_TABLE)


def reverse_complement(seq: Seq) -> Seq:
    """The other strand, read 5' to 3' (str, bytes or bytearray)."""
    return complement(seq)[::-1]


def base_code_table(alphabet: str = BASES, other: int = 255, dtype=np.uint8) -> np.ndarray:
    """(256,) byte -> code lookup: the i-th letter of `alphabet` (either case) codes as i,
    every other byte as `other`."""
    table = np.full(256, other, dtype=dtype)
    for i, base in enumerate(alphabet):
        table[ord(base)] = table[ord(base.lower())] = i
    return table


ACGT_CODES = base_code_table()  # A=0 C=1 G=2 T=3, 255 for anything else (N)


def encode(seq: str) -> np.ndarray:
    """A=0 C=1 G=2 T=3 (either case), 255 for anything else (N), as uint8."""
    return ACGT_CODES[np.frombuffer(seq.encode(), dtype=np.uint8)]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of A=0 C=1 G=2 T=3 codes along the last axis; codes >= 4 (N) stay."""
    return np.where(codes < 4, 3 - codes, codes)[..., ::-1]


# ------------------------------------------------------------------------- genetic code
CODONS = [a + b + c for a in BASES for b in BASES for c in BASES]  # the order of 64-codon arrays
CODON_INDEX = {codon: i for i, codon in enumerate(CODONS)}
CODONS_TCAG = [a + b + c for a in "TCAG" for b in "TCAG" for c in "TCAG"]  # NCBI's order of the code tables
# The standard genetic code (NCBI table 1), '*' the stop codons.
GENETIC_CODE = dict(zip(CODONS_TCAG, "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"))
# Translation tables by NCBI number. Table 11 (bacteria, archaea, plastids) gives every codon
# the amino acid of the standard code and differs only in which codons may start a protein.
GENETIC_CODES = {1: GENETIC_CODE, 11: GENETIC_CODE}
AMINO_ACIDS = sorted(set(GENETIC_CODE.values()))  # the 20 amino acids and '*'
