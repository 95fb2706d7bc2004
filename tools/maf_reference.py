"""The reference genome of a reference-projected MAF, as bgzip FASTA (+ .fai, .gzi):

    python -m tools.maf_reference MAF REFERENCE_SPECIES OUT.fa.gz

For alignments shipped without their reference FASTA (Debian's maffilter-examples Zymoseptoria
alignment, fetched by `bash tests/fetch_test_data.sh zymo`)."""

import sys

from genofm.alignment import reference_from_maf

if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    lengths = reference_from_maf(*sys.argv[1:])
    print(f"{sys.argv[3]}: {len(lengths)} contigs, {sum(lengths.values()):,} bases")
