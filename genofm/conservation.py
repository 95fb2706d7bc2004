"""Conservation from a whole-genome alignment (phast): a neutral model fitted by phyloFit on
four-fold degenerate sites, and phyloP scores of any reference bases.

The aligned bases come from genofm.alignment's arrays. A phylogenetic model of neutral
evolution (REV substitutions, branch lengths fitted) is learnt from the alignment columns of
four-fold degenerate sites, whose changes are taken as neutral. phyloP (likelihood-ratio test,
CONACC mode) then scores a column against it: -log10 p, positive where the column changed less
than neutral (conserved), negative where it changed more (accelerated). Each column is scored
on its own, so genofm hands phyloP only the columns it needs, concatenated. A column where no
species other than the reference has a base (absent or gaps) has no score (NaN).

The tree topology comes from the MAF's header (TBA and multiz write it as a comment) or the
config; phast wants a binary tree, so polytomies are resolved left to right (phyloFit fits the
branch lengths, so the branches this adds may come out near zero), and species not kept are
pruned.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .alignment import AlignedColumns, open_maf, other_species_bases
from .errors import GenofmInputError

log = logging.getLogger(__name__)

# array code -> FASTA letter for phast: absent rows are missing data (N), gaps stay gaps
PHAST_LETTERS = np.frombuffer(b"NACGTN-", dtype=np.uint8)


# --- the tree --------------------------------------------------------------------------------

def tree_from_maf(maf) -> str:
    """The species tree a TBA / multiz MAF names in its header comments, as Newick."""
    with open_maf(maf) as handle:
        for number, line in enumerate(handle, 1):
            if line.startswith(b"a"):
                break
            text = line.decode(errors="replace")
            if text.startswith("#") and "(" in text and ")" in text:
                tree = text[text.index("("):text.rindex(")") + 1]
                # TBA separates siblings by spaces: "(a (b c))" is "(a,(b,c))"
                return re.sub(r"\s+", "", re.sub(r"(?<=[^\s(,])\s+(?=[^\s),])", ",", tree)) + ";"
    raise GenofmInputError(f"{maf}: its header names no species tree (TBA and multiz write one as a comment); "
                           "give the tree in Newick")


def parse_topology(newick: str):
    """A Newick topology (branch lengths and inner names ignored) as nested lists of leaf names."""
    tokens = re.findall(r"[(),;]|[^(),;:\s]+|:[^(),;]*", newick)
    tokens = [t for t in tokens if not t.startswith(":")]
    position = 0

    def peek() -> str:
        return tokens[position] if position < len(tokens) else ""

    def node():
        nonlocal position
        if peek() == "(":
            position += 1
            children = [node()]
            while peek() == ",":
                position += 1
                children.append(node())
            if peek() != ")":
                raise GenofmInputError(f"tree {newick!r}: ')' expected at {peek() or 'the end'!r}")
            position += 1
            if peek() not in ("", "(", ")", ",", ";"):
                position += 1  # an inner node's name
            return children
        name = peek()
        if name in ("", "(", ")", ",", ";"):
            raise GenofmInputError(f"tree {newick!r}: a species name expected at {name or 'the end'!r}")
        position += 1
        return name

    return node()


def leaves(tree) -> list[str]:
    return [tree] if isinstance(tree, str) else [leaf for child in tree for leaf in leaves(child)]


def binary_tree(newick: str, keep: list[str]) -> str:
    """The topology pruned to the species `keep` and resolved into a binary tree, as Newick."""
    wanted = set(keep)

    def prune(node):
        if isinstance(node, str):
            return node if node in wanted else None
        children = [c for c in (prune(child) for child in node) if c is not None]
        return None if not children else children[0] if len(children) == 1 else children

    def resolve(node):
        if isinstance(node, str):
            return node
        children = [resolve(child) for child in node]
        while len(children) > 2:
            children = [[children[0], children[1]], *children[2:]]
        return children

    tree = parse_topology(newick)
    missing = sorted(wanted - set(leaves(tree)))
    if missing:
        raise GenofmInputError(f"the species tree {newick} does not have {', '.join(missing)}")

    def text(node):
        return node if isinstance(node, str) else "(" + ",".join(text(c) for c in node) + ")"

    return text(resolve(prune(tree))) + ";"


# --- phast -----------------------------------------------------------------------------------

def require_phast(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise GenofmInputError(f"{tool} (phast) is not installed: `apt-get install phast` on Debian/Ubuntu, or "
                               f"`conda install -c bioconda phast`")
    return path


def write_columns_fasta(path, columns: AlignedColumns, sites: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """The alignment columns of `sites` ((contig, 0-based positions) in order), concatenated,
    as a FASTA of one row per species; returns their codes."""
    blocks = [columns.take(contig, positions) for contig, positions in sites]
    codes = np.concatenate(blocks) if blocks else np.zeros((0, len(columns.species)), dtype=np.uint8)
    with open(path, "w") as handle:
        for i, name in enumerate(columns.species):
            handle.write(f">{name}\n{PHAST_LETTERS[codes[:, i]].tobytes().decode()}\n")
    return codes


def fit_neutral_model(columns: AlignedColumns, sites: list[tuple[str, np.ndarray]], tree: str, out_mod,
                      workdir, seed: int = 0) -> dict:
    """phyloFit (REV, the tree's branch lengths fitted) on the columns of `sites`; writes the
    model to `out_mod` and returns what it says (total branch length, background, likelihood).
    phyloFit draws some starting values at random: its seed (seed + 1, as it wants one >= 1)
    makes the model the same on every run."""
    workdir = Path(workdir) / "phylofit"
    workdir.mkdir(parents=True, exist_ok=True)
    fasta = workdir / "neutral_sites.fa"
    n = len(write_columns_fasta(fasta, columns, sites))
    topology = binary_tree(tree, columns.species)
    proc = subprocess.run([require_phast("phyloFit"), "--seed", str(seed + 1), "--tree", topology, "--subst-mod",
                           "REV", "--msa-format", "FASTA", "--out-root", str(workdir / "neutral"), str(fasta)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise GenofmInputError(f"phyloFit failed on {n} neutral columns: {proc.stderr.strip()[-1000:]}")
    model = (workdir / "neutral.mod").read_text()
    shutil.copyfile(workdir / "neutral.mod", out_mod)
    lengths = [float(x) for x in re.findall(r":([0-9.eE+-]+)", model.split("TREE:")[1])]
    return {"columns": n, "tree": topology, "total_branch_length": sum(lengths),
            "log_likelihood": float(re.search(r"TRAINING_LNL:\s*(\S+)", model).group(1))}


def phylop_scores(model_path, columns: AlignedColumns, sites: list[tuple[str, np.ndarray]], workdir) -> np.ndarray:
    """phyloP (LRT, CONACC) -log10 p of every site, in the order given; NaN where no species but
    the reference is aligned (phyloP skips such columns)."""
    workdir = Path(workdir) / "phylop"
    workdir.mkdir(parents=True, exist_ok=True)
    fasta = workdir / "sites.fa"
    codes = write_columns_fasta(fasta, columns, sites)
    n = len(codes)
    scores = np.full(n, math.nan)
    if n == 0:
        return scores
    proc = subprocess.run([require_phast("phyloP"), "--method", "LRT", "--mode", "CONACC", "--wig-scores",
                           "--refidx", "0", "--msa-format", "FASTA", "--chrom", "sites", str(model_path),
                           str(fasta)], capture_output=True, text=True)
    if proc.returncode:
        raise GenofmInputError(f"phyloP failed on {n} columns: {proc.stderr.strip()[-1000:]}")
    column = None
    for line in proc.stdout.splitlines():
        if line.startswith("fixedStep"):
            column = int(re.search(r"start=(\d+)", line).group(1)) - 1
        elif line.strip() and column is not None:
            scores[column] = float(line)
            column += 1
    # a column where no other species has a base carries no information (phyloP says 0 or skips it)
    informative = other_species_bases(codes) > 0
    scores[~informative] = math.nan
    return scores


# --- the workflow's pieces: a neutral model from the annotation, phyloP of VCF alleles ---------

def transcript_attribute(attribute: str, annotation_format: str) -> str:
    if attribute != "auto":
        return attribute
    return "transcript_id" if annotation_format == "gtf" else "Parent"


def neutral_site_sample(columns: AlignedColumns, fasta, cds_by_contig: dict, n: int,
                        seed: int) -> tuple[list[tuple[str, np.ndarray]], int]:
    """A seeded sample of `n` four-fold degenerate sites over the contigs the alignment has, by
    contig in the alignment's order; and how many there were."""
    from .consequence import four_fold_sites

    per_contig = []
    for contig in columns.contigs:
        if cds_by_contig.get(contig):
            per_contig.append((contig, four_fold_sites(fasta.fetch(contig), cds_by_contig[contig])))
    total = sum(len(p) for _, p in per_contig)
    if total == 0:
        raise GenofmInputError("the annotation gives no four-fold degenerate site on the alignment's contigs "
                               f"({', '.join(list(columns.contigs)[:5])}...): no coding sequences there?")
    keep = np.sort(np.random.default_rng(seed).choice(total, min(n, total), replace=False))
    offsets = np.cumsum([0] + [len(p) for _, p in per_contig])
    sample = [(contig, positions[keep[(keep >= lo) & (keep < hi)] - lo])
              for (contig, positions), lo, hi in zip(per_contig, offsets[:-1], offsets[1:])]
    return sample, total


def fit_from_annotation(arrays_dir, annotation, attribute: str, fasta, tree: str, sites: int, seed: int,
                        out_mod, workdir) -> dict:
    """The neutral model of a genome's alignment, fitted on a sample of the four-fold degenerate
    sites of its annotation's coding sequences (standard genetic code)."""
    from .consequence import read_cds_lines

    columns = AlignedColumns(arrays_dir)
    cds = read_cds_lines(annotation, attribute, table=1)
    sample, total = neutral_site_sample(columns, fasta, cds, sites, seed)
    fit = fit_neutral_model(columns, sample, tree, out_mod, workdir, seed)
    log.info("neutral model: %d of %d four-fold degenerate sites; total branch length %.3f substitutions per "
             "site; tree %s", fit["columns"], total, fit["total_branch_length"], fit["tree"])
    return {**fit, "four_fold_sites": total}


class PhylopScorer:
    """phyloP of VCF alleles: the mean over the REF bases' columns (an insertion: its anchor
    base), into allele.scores["phylop"]; none where no REF base's column has a score."""

    def __init__(self, model_path, arrays_dir):
        self.model_path, self.columns = Path(model_path), AlignedColumns(arrays_dir)

    def score(self, alleles) -> None:
        import tempfile

        from .vcf import SCORED_STATUSES

        wanted = [a for a in alleles if a.status in SCORED_STATUSES and a.kind != "other"
                  and a.ref_chrom in self.columns.contigs]
        if not wanted:
            return
        spans = {(a.ref_chrom, p) for a in wanted for p in range(a.pos, a.pos + len(a.ref))}
        by_contig: dict[str, list[int]] = {}
        for contig, position in sorted(spans):
            by_contig.setdefault(contig, []).append(position)
        sites = [(contig, np.array(positions)) for contig, positions in by_contig.items()]
        with tempfile.TemporaryDirectory(prefix="genofm-phylop-") as tmp:
            scores = phylop_scores(self.model_path, self.columns, sites, tmp)
        at = dict(zip(((c, int(p)) for c, positions in sites for p in positions), scores))
        for a in wanted:
            values = np.array([at[(a.ref_chrom, p)] for p in range(a.pos, a.pos + len(a.ref))])
            if not np.isnan(values).all():
                a.scores["phylop"] = float(np.nanmean(values))
