"""Checks on the committed demo data in config/demo (written by tools/demo.py).

The annotation-derived checks (CDS, consequence classes) re-derive everything from the GTF and the
genome here, independently of the generator's own code.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

DEMO = Path(__file__).resolve().parents[1] / "config" / "demo"
FILES = ("genome.fa.gz", "annotation.gtf", "promoters_vs_background.bed", "promoter_activity.bed", "variants.vcf",
         "motifs.tsv", "library.fa.gz", "library_labels.tsv.gz", "README.md")
STOPS = {"TAA", "TAG", "TGA"}
COMP = str.maketrans("ACGTacgtN", "TGCAtgcaN")


def revcomp(seq: str) -> str:
    return seq.translate(COMP)[::-1]


def translate(seq: str) -> str:
    from Bio.Seq import Seq  # biopython comes with pyjaspar (test extra); independent of tools.demo

    return str(Seq(seq).translate())


@pytest.fixture(scope="module")
def genome() -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    with gzip.open(DEMO / "genome.fa.gz", "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                name = line[1:].strip()
                seqs[name] = []
            else:
                seqs[name].append(line.rstrip("\n"))
    return {name: "".join(lines) for name, lines in seqs.items()}


@pytest.fixture(scope="module")
def gtf() -> list[dict]:
    rows = []
    for line in (DEMO / "annotation.gtf").read_text().splitlines():
        if line.startswith("#"):
            continue
        chrom, _, feature, start, end, _, strand, frame, attrs = line.split("\t")
        attr = dict(re.findall(r'(\S+) "([^"]*)";', attrs))
        rows.append(dict(chrom=chrom, feature=feature, start=int(start), end=int(end), strand=strand,
                         frame=frame, **attr))
    return rows


@pytest.fixture(scope="module")
def transcripts(gtf) -> dict[str, dict]:
    """Per transcript: chrom, strand, gene, exons, CDS and stop codon (1-based inclusive, sorted)."""
    out: dict[str, dict] = {}
    for r in gtf:
        if r["feature"] == "gene":
            continue
        t = out.setdefault(r["transcript_id"], dict(chrom=r["chrom"], strand=r["strand"], gene=r["gene_id"],
                                                     exon=[], CDS=[], stop_codon=[], start_codon=[]))
        if r["feature"] in t:
            t[r["feature"]].append((r["start"], r["end"]))
    for t in out.values():
        # coding bases in transcript order (CDS + stop codon), 1-based positions
        pos = [p for a, b in sorted(t["CDS"] + t["stop_codon"]) for p in range(a, b + 1)]
        t["coding"] = pos if t["strand"] == "+" else pos[::-1]
    return out


def coding_seq(genome: dict[str, str], t: dict) -> str:
    seq = "".join(genome[t["chrom"]][p - 1] for p in t["coding"]).upper()
    return seq if t["strand"] == "+" else seq.translate(COMP)  # positions already in transcript order


@pytest.fixture(scope="module")
def variants() -> list[dict]:
    out = []
    for line in (DEMO / "variants.vcf").read_text().splitlines():
        if not line.startswith("#"):
            chrom, pos, vid, ref, alt, _, _, info = line.split("\t")
            out.append(dict(chrom=chrom, pos=int(pos), id=vid, ref=ref, alt=alt,
                            **dict(kv.split("=") for kv in info.split(";"))))
    return out


def read_tsv(name: str, skip_header: bool = False) -> list[list[str]]:
    lines = (DEMO / name).read_text().splitlines()
    return [line.split("\t") for line in lines[1 if skip_header else 0 :]]


def gene_loci(gtf: list[dict]) -> list[tuple[str, int, int]]:
    """Genes with their promoters (400 bp upstream of the TSS), 1-based inclusive."""
    loci = []
    for r in (r for r in gtf if r["feature"] == "gene"):
        up = 400 if r["strand"] == "+" else 0
        loci.append((r["chrom"], r["start"] - up, r["end"] + 400 - up))
    return loci


def test_files_present_and_small():
    sizes = {name: (DEMO / name).stat().st_size for name in FILES}
    assert sum(sizes.values()) < 1_800_000, sizes  # mostly the GTF of 323 genes and the oligo library


def test_genome_is_plain_gzip_fasta(genome):
    raw = (DEMO / "genome.fa.gz").read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] == 0, "no FNAME (file name) and no FEXTRA (so not bgzip)"
    assert raw[4:8] == b"\0\0\0\0", "mtime must be 0 for byte-identical output"
    assert list(genome) == ["chr1", "chr2"]
    with gzip.open(DEMO / "genome.fa.gz", "rt") as fh:
        records = fh.read().split(">")[1:]
    for record in records:
        lines = record.splitlines()[1:]
        assert {len(line) for line in lines[:-1]} == {60} and 0 < len(lines[-1]) <= 60
    for seq in genome.values():
        assert set(seq) <= set("ACGTacgtN")


def test_genome_has_structure(genome):
    """Soft-masked repeats, runs of N, GC variation and CpG depletion, as the generator promises."""
    text = "".join(genome.values())
    assert sum(c.islower() for c in text) > 10_000
    assert max(len(m) for m in re.findall("N+", text)) >= 1000
    upper = text.upper()
    gc = [sum(map(upper[i : i + 100_000].count, "GC")) / 100_000 for i in range(0, len(upper), 100_000)]
    assert 0.40 <= min(gc) and max(gc) <= 0.62 and max(gc) - min(gc) > 0.05
    expected_cg = upper.count("C") * upper.count("G") / len(upper)
    assert upper.count("CG") / expected_cg < 0.7  # CpG depletion (CpG islands pull it back up a bit)


def test_gtf_reads_and_is_sorted(gtf):
    pyranges = pytest.importorskip("pyranges")
    gr = pyranges.read_gtf(str(DEMO / "annotation.gtf"))
    assert set(gr.df["Feature"]) == {"gene", "transcript", "exon", "CDS", "start_codon", "stop_codon",
                                     "five_prime_utr", "three_prime_utr"}
    keys = [(r["chrom"], r["start"]) for r in gtf]
    assert keys == sorted(keys)
    genes = [r for r in gtf if r["feature"] == "gene"]
    assert 250 <= len(genes) <= 400
    assert {(g["chrom"], g["strand"]) for g in genes} == {(c, s) for c in ("chr1", "chr2") for s in "+-"}
    assert {r["gene_biotype"] for r in gtf} == {"protein_coding"}


def test_cds_is_well_formed(genome, transcripts):
    for tid, t in transcripts.items():
        seq = coding_seq(genome, t)
        assert seq.startswith("ATG"), tid
        assert seq[-3:] in STOPS, tid
        assert len(seq) % 3 == 0, tid
        assert "*" not in translate(seq[:-3]), tid
        assert len(t["exon"]) >= 2 and len(t["start_codon"]) == len(t["stop_codon"]) == 1


def test_introns_and_utrs_carry_signals(genome, transcripts):
    for tid, t in transcripts.items():
        exons, seq = sorted(t["exon"]), genome[t["chrom"]]
        for (_, a), (b, _) in zip(exons, exons[1:]):
            intron = seq[a : b - 1].upper()  # 1-based inclusive exon ends -> 0-based intron slice
            intron = intron if t["strand"] == "+" else revcomp(intron)
            assert intron.startswith("GT") and intron.endswith("AG"), tid
            tract = intron[-18:-3]
            assert sum(c in "CT" for c in tract) == len(tract), tid  # polypyrimidine tract
        last = exons[-1] if t["strand"] == "+" else exons[0]
        tail = seq[last[0] - 1 : last[1]].upper()
        assert "AATAAA" in (tail if t["strand"] == "+" else revcomp(tail)), tid


def test_vcf_header_ref_and_order(genome, variants):
    pysam = pytest.importorskip("pysam")
    with pysam.VariantFile(str(DEMO / "variants.vcf")) as vcf:
        lengths = {c: vcf.header.contigs[c].length for c in vcf.header.contigs}
        assert lengths == {c: len(s) for c, s in genome.items()}
        assert {"CLASS", "GENE"} <= set(vcf.header.info)
        assert sum(1 for _ in vcf) == len(variants)
    for v in variants:
        assert genome[v["chrom"]][v["pos"] - 1 : v["pos"] - 1 + len(v["ref"])].upper() == v["ref"], v["id"]
        assert v["ref"] != v["alt"] and (len(v["ref"]) == 1 or len(v["alt"]) == 1)
        if len(v["ref"]) != len(v["alt"]):
            assert v["ref"][0] == v["alt"][0], "indels carry a padding base"
    keys = [(v["chrom"], v["pos"]) for v in variants]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert [v["id"] for v in variants] == [f"var{i}" for i in range(1, len(variants) + 1)]
    snvs = Counter(v["CLASS"] for v in variants if len(v["ref"]) == len(v["alt"]))
    assert set(snvs) == {"synonymous", "missense", "stop_gained", "motif_disrupting", "neutral"}
    assert all(80 <= n <= 120 for n in snvs.values()), snvs
    indels = Counter(v["CLASS"] for v in variants if len(v["ref"]) != len(v["alt"]))
    assert set(indels) == {"frameshift", "neutral"} and 20 <= sum(indels.values()) <= 40


def test_coding_classes_agree_with_translation(genome, transcripts, variants):
    where = {(t["chrom"], p): (tid, i) for tid, t in transcripts.items() for i, p in enumerate(t["coding"])}
    coding = ("synonymous", "missense", "stop_gained")
    for v in variants:
        hit = where.get((v["chrom"], v["pos"]))
        if len(v["ref"]) != 1 or len(v["alt"]) != 1:
            continue
        assert (hit is not None) == (v["CLASS"] in coding), v["id"]
        if hit is None:
            continue
        t = transcripts[hit[0]]
        assert v["GENE"] == t["gene"]
        seq = list(coding_seq(genome, t))
        seq[hit[1]] = v["alt"] if t["strand"] == "+" else v["alt"].translate(COMP)
        codon = slice(hit[1] - hit[1] % 3, hit[1] - hit[1] % 3 + 3)
        before, after = translate(coding_seq(genome, t)[codon]), translate("".join(seq[codon]))
        expected = "synonymous" if before == after else "stop_gained" if after == "*" else "missense"
        assert v["CLASS"] == expected, v["id"]


def test_indels_are_placed_as_classed(genome, transcripts, gtf, variants):
    coding = {(t["chrom"], p) for t in transcripts.values() for p in t["coding"]}
    genes = gene_loci(gtf)
    for v in variants:
        touched = [(v["chrom"], p) for p in range(v["pos"], v["pos"] + max(len(v["ref"]), 2))]
        if v["CLASS"] == "frameshift":
            assert all(k in coding for k in touched) and (len(v["ref"]) - len(v["alt"])) % 3 != 0, v["id"]
        if v["CLASS"] == "neutral":  # intergenic, off genes and promoters, off repeats (lowercase) and N
            assert not any(c == v["chrom"] and a <= v["pos"] <= b for c, a, b in genes), v["id"]
            window = genome[v["chrom"]][v["pos"] - 1 : v["pos"] - 1 + len(v["ref"])]
            assert window.isupper() and "N" not in window, v["id"]


def test_motif_variants_disrupt_planted_motifs(variants):
    motifs = read_tsv("motifs.tsv", skip_header=True)
    assert {m[4] for m in motifs} >= {"MA0139.1", "MA0108.2"} and len(motifs) > 300
    jaspar = pytest.importorskip("pyjaspar").jaspardb()
    probs = {}
    for mid in {m[4] for m in motifs}:
        counts = jaspar.fetch_motif_by_id(mid).counts
        probs[mid] = [{b: counts[b][i] / sum(counts[c][i] for c in "ACGT") for b in "ACGT"}
                      for i in range(len(counts["A"]))]
    for v in (v for v in variants if v["CLASS"] == "motif_disrupting"):
        site = [m for m in motifs if m[0] == v["chrom"] and int(m[1]) < v["pos"] <= int(m[2])]
        assert len(site) == 1 and site[0][6] == v["GENE"], v["id"]
        chrom, start, end, strand, mid = site[0][:5]
        i = v["pos"] - 1 - int(start) if strand == "+" else int(end) - v["pos"]
        ref, alt = v["ref"], v["alt"]
        if strand == "-":
            ref, alt = ref.translate(COMP), alt.translate(COMP)
        column = probs[mid][i]
        assert ref == max(column, key=column.get) and column[alt] <= 0.05, v["id"]


def test_bed_windows_are_labelled_and_balanced(genome, gtf):
    rows = read_tsv("promoters_vs_background.bed")
    assert all(len(r) == 7 for r in rows)
    keys = [(r[0], int(r[1])) for r in rows]
    assert keys == sorted(keys)
    labels = Counter(r[6] for r in rows)
    assert set(labels) == {"promoter", "background"} and labels["promoter"] == labels["background"]
    tss = {r["gene_id"]: (r["chrom"], r["start"] if r["strand"] == "+" else r["end"], r["strand"])
           for r in gtf if r["feature"] == "gene"}
    genes = gene_loci(gtf)
    for chrom, start, end, name, score, strand, label in rows:
        start, end = int(start), int(end)
        assert end - start == 300 and score == ("1" if label == "promoter" else "0")
        if label == "promoter":
            assert tss[name][0] == chrom and start < tss[name][1] <= end and tss[name][2] == strand
        else:
            window = genome[chrom][start:end]
            assert window.isupper() and "N" not in window, name
            assert not any(c == chrom and a <= end and start < b for c, a, b in genes), name  # 0-based start, 1-based a..b
    background = sorted((r[0], int(r[1]), int(r[2])) for r in rows if r[6] == "background")
    assert all(a[0] != b[0] or a[2] <= b[1] for a, b in zip(background, background[1:])), "overlap"
    # GC-matched as far as the genome allows: GC content alone separates the classes much less
    # than with random intergenic windows (AUROC 0.91)
    windows = [genome[r[0]][int(r[1]):int(r[2])].upper() for r in rows]
    gc = [(w.count("G") + w.count("C")) / len(w) for w in windows]
    assert roc_auc_score([r[6] == "promoter" for r in rows], gc) < 0.85


def test_regeneration_is_identical(tmp_path):
    pytest.importorskip("pyjaspar")
    from tools.demo import generate

    generate(tmp_path, seed=7)
    for name in FILES:
        new, old = (tmp_path / name).read_bytes(), (DEMO / name).read_bytes()
        if name.endswith(".gz"):
            # the deflate stream may differ between zlib builds; header and content must not
            assert new[:10] == old[:10], name
            new, old = gzip.decompress(new), gzip.decompress(old)
        assert new == old, name


def test_promoter_activity_follows_the_planted_sites():
    """The regression target is the promoters' planted sites (kind, count, spacing) plus noise."""
    import pandas as pd

    activity = pd.read_csv(DEMO / "promoter_activity.bed", sep="\t", header=None,
                           names=["chrom", "start", "end", "name", "score", "strand", "activity"])
    windows = pd.read_csv(DEMO / "promoters_vs_background.bed", sep="\t", header=None)
    assert sorted(activity["name"]) == sorted(windows.loc[windows[6] == "promoter", 3])
    motifs = pd.read_csv(DEMO / "motifs.tsv", sep="\t")
    weights = {"SP1": 1.0, "NRF1": 0.8, "ELK1": 0.6, "YY1": -0.5, "CTCF": 0.0, "TBP": 1.2}
    additive = 2.0 + motifs.assign(w=motifs["motif_name"].map(weights)).groupby("gene_id")["w"].sum()
    residual = activity.set_index("name")["activity"] - additive.reindex(activity["name"]).fillna(2.0).to_numpy()
    assert residual.min() > -1.0, "noise of sd 0.25 never goes below -4 sd"
    assert (residual > 0.45).sum() > 10, "activator pairs add synergy on top of the sites' weights"
    assert activity["activity"].std() > 1.0


def test_library_halves_differ_in_their_motifs_not_their_composition():
    """The oligo library: 10,000 oligos of 100 bp, labels alternating sites / shuffled; each
    listed site of a `sites` oligo scores high for its JASPAR matrix, its shuffled counterpart
    low; GC and CpG counts tell the halves apart no better than chance."""
    import numpy as np
    import pandas as pd

    pyjaspar = pytest.importorskip("pyjaspar")
    with gzip.open(DEMO / "library.fa.gz", "rt") as fh:
        records = [r.split("\n", 1) for r in fh.read().split(">")[1:]]
    seqs = {name: body.replace("\n", "") for name, body in records}
    labels = pd.read_csv(DEMO / "library_labels.tsv.gz", sep="\t")
    assert list(labels["name"]) == list(seqs) and len(seqs) == 10_000
    assert {len(s) for s in seqs.values()} == {100} and set("".join(seqs.values())) <= set("ACGT")
    assert labels["label"].tolist() == ["sites", "shuffled"] * 5000
    ids = pd.read_csv(DEMO / "motifs.tsv", sep="\t").groupby("motif_name")["motif_id"].first()
    db = pyjaspar.jaspardb()
    log_odds = {}
    for name, motif_id in ids.items():
        counts = np.array([db.fetch_motif_by_id(motif_id).counts[b] for b in "ACGT"], dtype=float).T + 0.5
        log_odds[name] = np.log2(counts / counts.sum(1, keepdims=True) / 0.25)
    scores = {"sites": [], "shuffled": []}
    for name, label, sites in labels[["name", "label", "sites"]].itertuples(index=False):
        for site in sites.split(","):
            motif, start, strand = site.split(":")
            matrix = log_odds[motif]
            word = seqs[name][int(start):int(start) + len(matrix)]
            word = revcomp(word) if strand == "-" else word
            scores[label].append(sum(matrix[i, "ACGT".index(b)] for i, b in enumerate(word)))
    assert np.mean(scores["sites"]) > np.mean(scores["shuffled"]) + 8, {k: np.mean(v) for k, v in scores.items()}
    is_sites = labels["label"].eq("sites").to_numpy()
    for feature in (lambda s: s.count("G") + s.count("C"), lambda s: s.count("CG")):
        values = [feature(seqs[n]) for n in labels["name"]]
        assert 0.45 < roc_auc_score(is_sites, values) < 0.55
