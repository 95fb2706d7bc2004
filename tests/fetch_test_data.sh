#!/usr/bin/env bash
# Real sequence data for the tests, from Debian packages (nothing large is committed):
#   vt-examples: human GRCh37 chr20 (bgzip + .fai + .gzi) and a real indel VCF;
#   ariba: M. tuberculosis H37Rv (gzip FASTA + GenBank annotation), for the model-quality
#   benchmark (config/examples/mtb.yaml); with the argument "mtb", and then only that;
#   maffilter-examples: a 13-genome Zymoseptoria whole-genome alignment (MAF, reference Z.
#   tritici IPO323) with gene models (GFF3), and the reference FASTA the MAF carries (bgzip,
#   written by tools/maf_reference.py); with the argument "zymo", and then only that.
# Into ${GENOFM_TESTDATA:-.cache/testdata}; does nothing when the files are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${GENOFM_TESTDATA:-.cache/testdata}
mkdir -p "$dest"

fetch_deb() {  # fetch_deb PACKAGE DIR: download and unpack a Debian package into DIR
    local package=$1 dir=$2 work
    work=$(mktemp -d)
    (cd "$work" && apt-get download "$package" >/dev/null 2>&1) || {
        [ "$(id -u)" = 0 ] && apt-get update -qq && (cd "$work" && apt-get download "$package" >/dev/null)
    } || { echo "fetch_test_data: cannot download $package" >&2; rm -rf "$work"; return 1; }
    dpkg -x "$work"/"$package"_*.deb "$dir"
    rm -rf "$work"
}

vt="$dest/vt"
if [ -z "${1:-}" ] && [ ! -s "$vt/20.fa.gz.gzi" ]; then
    tmp=$(mktemp -d)
    fetch_deb vt-examples "$tmp"
    examples="$tmp/usr/share/doc/vt/examples"
    mkdir -p "$vt"
    cp "$examples/ref/20.fa.gz" "$examples/ref/20.fa.gz.fai" "$examples/normalize/01_IN.vcf.gz" "$vt/"
    gunzip -c "$examples/ref/20.fa.gz.gzi.gz" > "$vt/20.fa.gz.gzi.tmp" && mv "$vt/20.fa.gz.gzi.tmp" "$vt/20.fa.gz.gzi"
    rm -rf "$tmp"
fi
if [ "${1:-}" = zymo ]; then
    zymo="$dest/zymo"
    if [ ! -s "$zymo/IPO323.fa.gz.gzi" ]; then
        tmp=$(mktemp -d)
        fetch_deb maffilter-examples "$tmp"
        mkdir -p "$zymo"
        cp "$tmp"/usr/share/doc/maffilter/examples/Ztritici/{tba_refIPO323.maf.gz,Mgraminicolav2.FrozenGeneCatalog20080910.gff.gz} "$zymo/"
        rm -rf "$tmp"
        "${GENOFM_PYTHON:-${GENOFM_VENV:-.venv}/bin/python}" -m tools.maf_reference "$zymo/tba_refIPO323.maf.gz" Ztritici_IPO323 \
            "$zymo/IPO323.fa.gz"
    fi
    echo "Zymoseptoria data in $zymo: $(ls "$zymo" | tr '\n' ' ')"
elif [ "${1:-}" != mtb ]; then
    echo "test data in $dest: $(ls "$vt" | tr '\n' ' ')"
else
    mtb="$dest/mtb"
    if [ ! -s "$mtb/NC_000962.3.gb" ]; then
        tmp=$(mktemp -d)
        fetch_deb ariba "$tmp"
        mkdir -p "$mtb"
        cp "$tmp"/usr/lib/python3/dist-packages/ariba/tb_data/NC_000962.3.{fa.gz,gb} "$mtb/"
        rm -rf "$tmp"
    fi
    echo "M. tuberculosis data in $mtb: $(ls "$mtb" | tr '\n' ' ')"
fi
