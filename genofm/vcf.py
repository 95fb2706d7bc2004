"""VCF input for variant scoring: streaming, checks, and the INFO fields of the annotated copy
(written by vcf_writer).

Input is VCF, gzip/bgzip VCF or BCF through pysam, read twice: a cheap first pass checks
the order (the output must be tabix-indexed) and counts records, the second streams them in
chunks to the scorer. Each record becomes one `Allele` per ALT (multi-allelic records are
split for scoring and joined again on output); a record that cannot be scored keeps its row
with a status that says why. Output lines (vcf_writer.annotated_line) are the input records as
htslib formats them with the genofm INFO fields appended, so every input record comes out, in input order.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import pysam

from .errors import GenofmInputError
from .files import is_plain_gzip, open_text

log = logging.getLogger(__name__)

STATUSES = {
    "OK": "scored",
    "NEAR_CONTIG_END": "the window reaches past a contig end: scored on the shorter window, or not, as configured",
    "N_IN_WINDOW": "too much of the window is N: not scored",
    "REF_MISMATCH": "REF differs from the reference genome: not scored",
    "REF_N": "REF holds N or another non-ACGT base: not scored",
    "ALT_NOT_ACGT": "ALT holds a base other than A, C, G, T: not scored",
    "SYMBOLIC_ALLELE": "ALT is symbolic (<DEL>, <NON_REF>, ...), a breakend or '*': not scored",
    "NO_ALT": "the record has no ALT allele: not scored",
    "UNKNOWN_CONTIG": "the contig is not in the reference (after aliases): not scored",
    "POS_PAST_END": "REF reaches past the end of the contig: not scored",
    "OUTSIDE_REGIONS": "outside the configured regions: not scored",
}
# statuses whose alleles still get scores
SCORED_STATUSES = ("OK", "NEAR_CONTIG_END")
_REGION = re.compile(r"^([^:]+):([0-9,]+)-([0-9,]+)$")


@dataclass
class Allele:
    """One ALT of one VCF record; positions 0-based on the reference contig."""

    record: int  # 0-based number of the record in the input
    chrom: str  # as the VCF names it
    pos: int  # 0-based start of REF
    vcf_id: str
    ref: str
    alt: str
    variant_class: str = ""
    status: str = "OK"
    codon_position: int = 0  # 1-3 in its codon on the coding strand (CallsetConfig.codon_info_key); 0 unknown
    ref_chrom: str | None = None  # the reference's name for chrom
    scores: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        if self.status in ("SYMBOLIC_ALLELE", "NO_ALT"):
            return "other"
        if len(self.ref) == len(self.alt):
            return "snv" if len(self.ref) == 1 else "mnv"
        return "indel"


# an NCBI FASTA name: gi|88193823|ref|NC_007795.1| (the accession is the part after ref|, gb|, emb| or dbj|)
_NCBI_NAME = re.compile(r"^(?:gi\|\d+\|)?(?:ref|gb|emb|dbj)\|([^|]+)(?:\||$)")
_VERSION = re.compile(r"\.\d+$")
_MITO = ("chrM", "chrMT", "M", "MT")


def accession_of(name: str) -> str:
    """The accession of an NCBI FASTA name (gi|88193823|ref|NC_007795.1| -> NC_007795.1), else the name."""
    match = _NCBI_NAME.match(name)
    return match.group(1) if match else name


class ContigResolver:
    """Maps a VCF contig name to the reference's: the alias map first, then the name itself, then
    with or without a 'chr' prefix (chrM and MT count as the same), then by accession: the
    accession of an NCBI FASTA name (gi|...|ref|NC_007795.1|, also gb|, emb|, dbj|) and an
    accession with or without its version suffix (NC_007795 for NC_007795.1, and the reverse;
    two different versions do not match). A name that more than one reference contig matches is
    not matched: genofm does not guess. Each mapping other than the identity is logged once."""

    def __init__(self, reference, aliases: dict[str, str], aliases_key: str = "variants.<callset>.contig_aliases"):
        self.aliases_key = aliases_key  # where the config sets the aliases, named in every message
        for source, target in aliases.items():
            if target not in reference:
                raise GenofmInputError(f"{aliases_key}: {source!r} -> {target!r}: {target!r} is not a reference "
                                       "contig")
        self.reference = list(reference)
        self._names = set(self.reference)
        self.aliases = aliases
        self._cache: dict[str, str | None] = {}
        self._ambiguous: dict[str, list[str]] = {}
        self.unmatched: list[str] = []  # VCF contigs matched to nothing, in the order met
        self._by_accession: dict[str, list[str]] = {}
        self._by_unversioned: dict[str, list[str]] = {}
        for contig in self.reference:
            accession = accession_of(contig)
            self._by_accession.setdefault(accession, []).append(contig)
            self._by_unversioned.setdefault(_VERSION.sub("", accession), []).append(contig)

    def __call__(self, name: str) -> str | None:
        if name not in self._cache:
            found, how = self._match(name)
            self._cache[name] = found
            if found is not None and how:
                log.info("VCF contig %s read as reference contig %s (%s)", name, found, how)
            elif found is None:
                self.unmatched.append(name)
                log.warning("%s", self.why_unmatched(name))
        return self._cache[name]

    def _match(self, name: str) -> tuple[str | None, str]:
        if name in self.aliases:
            return self.aliases[name], "contig_aliases"
        if name in self._names:
            return name, ""
        prefixed = name[3:] if name.startswith("chr") else "chr" + name
        if prefixed in self._names:
            return prefixed, "'chr' prefix"
        if name in _MITO:
            found = next((c for c in ("chrM", "MT", "chrMT", "M") if c in self._names), None)
            if found:
                return found, "chrM/MT"
        accession = accession_of(name)
        candidates = self._by_accession.get(accession, [])
        how = "NCBI FASTA name"
        if not candidates:
            unversioned = _VERSION.sub("", accession)
            how = "accession version"
            candidates = [c for c in self._by_unversioned.get(unversioned, [])  # one side without a version
                          if unversioned in (accession, accession_of(c))]
        if len(candidates) == 1:
            return candidates[0], how
        if len(candidates) > 1:
            self._ambiguous[name] = candidates
        return None, ""

    def why_unmatched(self, name: str) -> str:
        """Why the VCF contig `name` has no reference contig, and the setting that fixes it."""
        fix = f"map it with {self.aliases_key} (VCF name: reference name)"
        if name in self._ambiguous:
            return (f"VCF contig {name} matches more than one reference contig "
                    f"({', '.join(self._ambiguous[name])}), so none is used; {fix}")
        shown = ", ".join(self.reference[:5]) + (", ..." if len(self.reference) > 5 else "")
        return (f"VCF contig {name} is not in the reference, which has {len(self.reference)} contigs "
                f"({shown}); if it is one of them under another name, {fix}")


def contig_resolver(reference, aliases: dict[str, str],
                    aliases_key: str = "variants.<callset>.contig_aliases") -> ContigResolver:
    """The VCF-to-reference contig name map of `reference` (its contig names) and `aliases`, set
    in the config at `aliases_key`."""
    return ContigResolver(reference, aliases, aliases_key)


def parse_regions(regions: list[str]) -> dict[str, list[tuple[int, int]]]:
    """'chr:start-end' strings (1-based, inclusive) as 0-based half-open ranges by contig."""
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for text in regions:
        match = _REGION.match(text.strip())
        if not match:
            raise GenofmInputError(f"region {text!r} is not of the form chrom:start-end")
        start, end = (int(x.replace(",", "")) for x in match.group(2, 3))
        if start < 1 or end < start:
            raise GenofmInputError(f"region {text!r}: start must be >= 1 and end >= start")
        by_contig.setdefault(match.group(1), []).append((start - 1, end))
    return by_contig


@contextlib.contextmanager
def readable_vcf(path: str | Path) -> Iterator[Path]:
    """The VCF itself, or for a plain-gzip VCF a decompressed temporary copy (in $TMPDIR)."""
    if not Path(path).is_file():
        raise GenofmInputError(f"{path}: VCF file not found")
    if not is_plain_gzip(path):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="genofm-vcf-") as tmp:
        plain = Path(tmp) / "input.vcf"
        try:
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError) as err:
            raise GenofmInputError(f"{path}: cannot decompress: {err}; is the file truncated?") from err
        yield plain


def open_vcf(path: str | Path, name: str | Path | None = None) -> pysam.VariantFile:
    """pysam's reader; `name` (default: path) is the file that error messages name."""
    name = name or path
    try:
        return pysam.VariantFile(str(path))
    except (ValueError, OSError, NotImplementedError) as err:
        hint = "" if "truncated" in str(err) else " (a VCF starts with its ## and #CHROM header lines)"
        raise GenofmInputError(f"{name}: not a readable VCF/BCF{hint}: {err}") from err


def iter_records(vcf: pysam.VariantFile, path) -> Iterator[tuple[int, pysam.VariantRecord]]:
    """(0-based record number, record); a read error names the last good record."""
    n, last = 0, "the header"
    it = iter(vcf)
    while True:
        try:
            record = next(it)
        except StopIteration:
            return
        except (OSError, ValueError) as err:
            bad = bad_field(vcf.filename.decode() if isinstance(vcf.filename, bytes) else vcf.filename, n + 1)
            if bad:
                raise GenofmInputError(f"{path}: {bad} (record {n + 1})") from err
            raise GenofmInputError(f"{path}: cannot read the record after {last} (record {n + 1}): {err}; "
                                   "is the file truncated or corrupt?") from err
        yield n, record
        n += 1
        last = f"record {n} ({record.chrom}:{record.pos})"


def bad_field(path: str | Path, record: int) -> str | None:
    """For a text VCF (plain or bgzip) that htslib cannot read: "line N: what is wrong" for record
    number `record` (1-based) when one of the fields htslib chokes on is malformed (too few
    columns, an empty CHROM or REF, a POS that is not a number); None otherwise."""
    try:
        with open_text(path) as lines:
            seen = 0
            for number, line in enumerate(lines, 1):
                if line.startswith("#"):
                    continue
                seen += 1
                if seen == record:
                    return _field_problem(line.rstrip("\r\n").split("\t"), number)
    except (OSError, EOFError, UnicodeError):
        pass
    return None


def _field_problem(columns: list[str], line: int) -> str | None:
    if len(columns) < 8:
        return (f"line {line}: {len(columns)} tab-separated columns, a VCF record has at least 8 "
                "(CHROM POS ID REF ALT QUAL FILTER INFO); are they separated by spaces?")
    chrom, pos, _, ref = columns[:4]
    if not chrom:
        return f"line {line}: CHROM is empty"
    if not pos.isdigit():
        return f"line {line}: POS {pos!r} is not a number" + (" >= 0" if re.fullmatch(r"-\d+", pos) else "")
    if not ref:
        return f"line {line}: REF is empty"
    return None


@dataclass
class VcfScan:
    n_records: int
    header_text: str  # the input header with htslib's lines for undeclared contigs and INFO keys
    contigs: list[str]


def scan_vcf(readable: str | Path, path: str | Path | None = None) -> VcfScan:
    """First pass: count records and check they are sorted (contigs in blocks, positions
    non-decreasing), as tabix indexing of the output needs. `path` names the file in errors."""
    path = path or readable
    with open_vcf(readable, path) as vcf:
        contigs: list[str] = []
        seen: set[str] = set()
        prev_pos = 0
        n = 0
        for n_before, record in iter_records(vcf, path):
            n = n_before + 1
            if not contigs or record.chrom != contigs[-1]:
                if record.chrom in seen:
                    raise GenofmInputError(
                        f"{path}: record {n} ({record.chrom}:{record.pos}) is out of order: contig "
                        f"{record.chrom} appeared before {contigs[-1]}; sort the VCF (bcftools sort)")
                contigs.append(record.chrom)
                seen.add(record.chrom)
            elif record.pos < prev_pos:
                raise GenofmInputError(
                    f"{path}: record {n} ({record.chrom}:{record.pos}) is out of order: it comes after "
                    f"{record.chrom}:{prev_pos}; sort the VCF (bcftools sort)")
            prev_pos = record.pos
        return VcfScan(n_records=n, header_text=str(vcf.header), contigs=contigs)


# Sequence Ontology consequence terms, most severe first (Ensembl VEP's ranking, abridged): an
# annotation listing several transcripts or terms gives the allele its most severe one.
SEVERITY = ("transcript_ablation", "splice_acceptor_variant", "splice_donor_variant", "stop_gained",
            "frameshift_variant", "stop_lost", "start_lost", "transcript_amplification", "inframe_insertion",
            "inframe_deletion", "missense_variant", "protein_altering_variant", "splice_region_variant",
            "incomplete_terminal_codon_variant", "start_retained_variant", "stop_retained_variant",
            "synonymous_variant", "coding_sequence_variant", "mature_miRNA_variant", "5_prime_UTR_variant",
            "3_prime_UTR_variant", "non_coding_transcript_exon_variant", "intron_variant",
            "NMD_transcript_variant", "non_coding_transcript_variant", "upstream_gene_variant",
            "downstream_gene_variant", "TFBS_ablation", "TFBS_amplification", "TF_binding_site_variant",
            "regulatory_region_ablation", "regulatory_region_amplification", "regulatory_region_variant",
            "intergenic_variant")
_RANK = {term: i for i, term in enumerate(SEVERITY)}


class AnnotationLayout(NamedTuple):
    """Where a VEP (CSQ) or snpEff (ANN) entry holds its fields, by position in "a|b|c"."""

    allele: int
    consequence: int
    codons: int | None = None  # VEP's Codons, "gCt/gTt": the changed base upper-case
    hgvs_c: int | None = None  # snpEff's HGVS.c, "c.123A>G"


def annotation_layout(header: pysam.VariantHeader, key: str) -> AnnotationLayout | None:
    """For a VEP (CSQ: "Format: Allele|Consequence|...") or snpEff (ANN: "'Allele | Annotation
    | ...'") INFO key, the positions of its fields; None for a plain key whose value is the
    class itself."""
    description = header.info[key].description if key in header.info else ""
    match = re.search(r"Format:\s*(.+)$", description) or re.search(r"'([^']*\|[^']*)'", description)
    if not match:
        return None
    names = [n.strip().strip("'\" ").lower() for n in match.group(1).split("|")]
    allele = next((i for i, n in enumerate(names) if n == "allele"), None)
    consequence = next((i for i, n in enumerate(names) if n in ("consequence", "annotation")), None)
    if allele is None or consequence is None:
        raise GenofmInputError(f"INFO/{key} is a |-separated annotation without Allele and Consequence "
                               f"(VEP) or Annotation (snpEff) fields: {description!r}")
    return AnnotationLayout(allele, consequence, next((i for i, n in enumerate(names) if n == "codons"), None),
                            next((i for i, n in enumerate(names) if n == "hgvs.c"), None))


_HGVS_CODING_SNV = re.compile(r"^c\.(\d+)[ACGT]>[ACGT]$")


def annotated_allele(entries, alt: str, layout: AnnotationLayout) -> tuple[str, int]:
    """The most severe consequence term among the annotation entries of this ALT (VEP writes
    indel alleles without the shared first base, or "-"; those fall back to every entry), and
    the SNV's codon position in the entry that gives it (0 where the entry does not say)."""
    width = max(layout.allele, layout.consequence)
    fields = [f for f in (str(e).split("|") for e in entries if e is not None) if len(f) > width]
    mine = [f for f in fields if f[layout.allele] == alt] or fields
    ranked = [(_RANK.get(t, len(_RANK)), i, t) for i, f in enumerate(mine) for t in f[layout.consequence].split("&")
              if t]
    if not ranked:
        return "", 0
    _, i, term = min(ranked)
    return term, entry_codon_position(mine[i], layout)


def entry_codon_position(fields: list[str], layout: AnnotationLayout) -> int:
    if layout.codons is not None and layout.codons < len(fields):
        ref_codon = fields[layout.codons].split("/")[0]
        upper = [i for i, c in enumerate(ref_codon) if c.isupper()]
        if len(ref_codon) == 3 and len(upper) == 1:
            return upper[0] + 1
    if layout.hgvs_c is not None and layout.hgvs_c < len(fields):
        match = _HGVS_CODING_SNV.match(fields[layout.hgvs_c].strip())
        if match:
            return (int(match.group(1)) - 1) % 3 + 1
    return 0


class AlleleChecker:
    """Turns records into alleles with a status, checking them against the reference."""

    def __init__(self, fasta: pysam.FastaFile, aliases: dict[str, str], regions: list[str],
                 class_info_key: str = "", callset_key: str = "variants.<callset>", codon_info_key: str = ""):
        self.fasta = fasta
        self.lengths = dict(zip(fasta.references, fasta.lengths))
        self.resolve = contig_resolver(self.lengths, aliases, f"{callset_key}.contig_aliases")
        self.regions = parse_regions(regions)
        self.class_info_key, self.codon_info_key, self.callset_key = class_info_key, codon_info_key, callset_key
        self._annotation_layout: AnnotationLayout | None | tuple = ()  # () unread; None: a plain class key

    def annotations_of(self, record: pysam.VariantRecord, n_alts: int) -> list[tuple[str, int]]:
        """(class, codon position or 0) of each ALT, from class_info_key (a VEP or snpEff entry
        also gives the codon position)."""
        if not self.class_info_key or self.class_info_key not in record.info:
            return [("", 0)] * max(n_alts, 1)
        value = record.info[self.class_info_key]
        if self._annotation_layout == ():
            self._annotation_layout = annotation_layout(record.header, self.class_info_key)
        if self._annotation_layout:
            entries = value if isinstance(value, tuple) else (value,)
            return [annotated_allele(entries, alt, self._annotation_layout) for alt in (record.alts or ("",))]
        if isinstance(value, tuple):
            if len(value) == n_alts:  # Number=A: one class per ALT
                return [(str(v) if v is not None else "", 0) for v in value]
            value = value[0]
        return [(str(value), 0)] * max(n_alts, 1)

    def codon_position_of(self, record: pysam.VariantRecord) -> int:
        if not self.codon_info_key or self.codon_info_key not in record.info:
            return 0
        value = record.info[self.codon_info_key]
        value = value[0] if isinstance(value, tuple) else value
        if str(value) not in ("1", "2", "3"):
            raise GenofmInputError(f"record {record.chrom}:{record.pos}: INFO/{self.codon_info_key}={value} is not a "
                                   f"codon position (1, 2 or 3); fix the VCF or set {self.callset_key}.codon_info_key")
        return int(value)

    def in_regions(self, chrom: str, ref_chrom: str | None, pos: int) -> bool:
        ranges = self.regions.get(chrom) or self.regions.get(ref_chrom or "", [])
        return any(start <= pos < end for start, end in ranges)

    def alleles(self, number: int, record: pysam.VariantRecord) -> list[Allele]:
        ref = (record.ref or "").upper()
        alts = record.alts or ()
        annotations = self.annotations_of(record, len(alts))
        codon = self.codon_position_of(record)  # INFO/CODON_POS first, else the annotation's
        base = dict(record=number, chrom=record.chrom, pos=record.pos - 1, vcf_id=record.id or ".", ref=ref)
        if not alts:
            return [Allele(alt=".", variant_class=annotations[0][0], status="NO_ALT", codon_position=codon, **base)]
        ref_chrom = self.resolve(record.chrom)
        status = self.record_status(record, ref, ref_chrom)
        out = []
        for alt, (variant_class, annotated_codon) in zip(alts, annotations):
            alt = alt.upper()
            if alt == "*" or alt.startswith("<") or "[" in alt or "]" in alt or alt == ".":
                allele_status = "SYMBOLIC_ALLELE"
            elif status == "OK" and (not alt or alt.strip("ACGT")):
                allele_status = "ALT_NOT_ACGT"
            else:
                allele_status = status
            out.append(Allele(alt=alt, variant_class=variant_class, status=allele_status, ref_chrom=ref_chrom,
                              codon_position=codon or annotated_codon, **base))
        return out

    def record_status(self, record, ref: str, ref_chrom: str | None) -> str:
        if ref_chrom is None:
            return "UNKNOWN_CONTIG"
        start = record.pos - 1
        if start + len(ref) > self.lengths[ref_chrom]:
            return "POS_PAST_END"
        if not ref or ref.strip("ACGT"):
            return "REF_N"
        if self.fasta.fetch(ref_chrom, start, start + len(ref)).upper() != ref:
            return "REF_MISMATCH"
        if self.regions and not self.in_regions(record.chrom, ref_chrom, start):
            return "OUTSIDE_REGIONS"
        return "OK"


# --- output ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class InfoField:
    key: str  # INFO ID
    score: str  # key of Allele.scores ("" for the status)
    type: str
    description: str


def info_fields(score_names: list[str], markov_order: int = 0,
                more: dict[str, tuple[str, str]] | None = None) -> list[InfoField]:
    """The annotated VCF's INFO fields: the status, then each score's. `more`: scores described
    elsewhere (trained-head effects), score name -> (INFO key, description)."""
    described = {
        "markov": ("GFM_MARKOV", f"Baseline: log-likelihood difference (ALT - REF) of the bases around the SNV "
                   f"under an order-{markov_order} Markov model of the training sequence, averaged over "
                   "both strands"),
        "llr": ("GFM_LLR", "Masked-marginal log-likelihood ratio log P(alt) - log P(ref) at the masked "
                "token holding the variant (SNVs, and MNVs inside one token); negative: the model "
                "finds the ALT less likely"),
        "pll": ("GFM_PLL", "Pseudo-log-likelihood of the ALT window's tokens covering the variant minus "
                "that of the REF window's (each token masked in turn; subword-token masked LMs); "
                "negative: the model finds the ALT less likely"),
        "lldiff": ("GFM_LLDIFF", "Log-likelihood of the ALT window minus that of the REF window "
                   "under the next-token model"),
        "influence": ("GFM_INFLUENCE", "Change (ALT - REF) in the next-token log-likelihood of the bases "
                      "that follow the variant, read on each strand, the more negative of the two; "
                      "negative: the ALT base upsets what the model expects next"),
        "emb_cosine": ("GFM_EMB_COS", "Cosine distance between the REF and ALT window embeddings"),
        "emb_l2": ("GFM_EMB_L2", "Euclidean (L2) distance between the REF and ALT window embeddings"),
        "phylop": ("GFM_PHYLOP", "Conservation: phyloP -log10 p (LRT, CONACC) of the REF bases' alignment columns "
                   "against the genome's neutral model, averaged; positive: conserved, negative: accelerated"),
        **(more or {}),
    }
    statuses = ", ".join(STATUSES)
    fields = [InfoField("GFM_STATUS", "", "String", f"genofm scoring status: {statuses}")]
    fields += [InfoField(described[name][0], name, "Float", described[name][1]) for name in score_names]
    return fields

