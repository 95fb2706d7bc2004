"""Motif discovery from attributions: TF-MoDISco (modisco-lite) patterns, matched against JASPAR
with a TOMTOM-style column similarity, and logos of each pattern beside its best match.

Matcher. Both matrices become mean-zero columns weighted by how much they say: a pattern's
contribution-weighted matrix (CWM; negative patterns sign-flipped so their bases point up),
each column minus its mean; a JASPAR matrix's IC x (PPM - 1/4) (information content in bits
times the probabilities' departure from uniform). For every offset of the two where at least
`min_overlap` columns overlap (or the shorter's length), and both orientations of the
pattern, the similarity is the Pearson correlation of the two matrices aligned and
zero-padded to the union of their columns, flattened (columns are mean-zero, so it is their
cosine): columns of either that face nothing lower it, so a short partial overlap cannot
score as well as the whole motif (TOMTOM gets the same from summing column scores); the best
over offsets and strands is the pair's similarity, and matches are ranked by it.

Significance, as TOMTOM's null, from the database's columns: the same best similarity against
`n_null` matrices of the JASPAR motif's length whose columns are drawn at random from all the
database's columns. The null's mean and standard deviation give a z-score, a p-value from the
Gaussian tail of z, and Benjamini-Hochberg q-values over the database for each pattern.
(Shuffling only the motif's own columns would make a low-complexity motif such as SP1's GC box
its own null.) Ranking by z instead would favour long motifs, whose null is tight.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from .errors import GenofmInputError

log = logging.getLogger(__name__)

ACGT = "ACGT"


@dataclass
class MotifDatabase:
    ids: list[str]
    names: list[str]
    ppms: list[np.ndarray]  # each (W, 4), A C G T

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, motif_id: str) -> int:
        return self.ids.index(motif_id)


@functools.lru_cache(maxsize=4)
def jaspar_database(collection: str = "CORE", tax_group: str = "vertebrates",
                    all_versions: bool = False) -> MotifDatabase:
    """JASPAR matrices from pyjaspar's offline database (its release: JASPAR2026 for pyjaspar 4)."""
    try:
        from pyjaspar import jaspardb
    except ImportError as err:
        raise GenofmInputError("motif matching needs pyjaspar (pip install 'genofm[motifs]')") from err
    motifs = jaspardb().fetch_motifs(collection=collection, tax_group=[tax_group] if tax_group else None,
                                     all_versions=all_versions)
    ppms = []
    for m in motifs:
        counts = np.array([m.counts[b] for b in ACGT], dtype=float).T  # (W, 4)
        ppms.append((counts + 0.01) / (counts + 0.01).sum(1, keepdims=True))
    return MotifDatabase([m.matrix_id for m in motifs], [m.name for m in motifs], ppms)


def information_weighted(ppm: np.ndarray) -> np.ndarray:
    """IC x (PPM - 1/4): (W, 4), mean-zero columns, uninformative columns near zero."""
    ppm = ppm / ppm.sum(1, keepdims=True)
    bits = 2 + (ppm * np.log2(np.clip(ppm, 1e-9, 1))).sum(1, keepdims=True)
    return bits * (ppm - 0.25)


def centred(matrix: np.ndarray) -> np.ndarray:
    return matrix - matrix.mean(1, keepdims=True)


def trim(cwm: np.ndarray, fraction: float = 0.3) -> tuple[int, int]:
    """(start, end) of the columns from the first to the last whose total |contribution| is at
    least `fraction` of the largest (modisco's usual trimming before TOMTOM)."""
    weight = np.abs(cwm).sum(1)
    keep = np.flatnonzero(weight >= fraction * weight.max())
    return int(keep[0]), int(keep[-1]) + 1


class Matcher:
    """Best-offset column similarity of query matrices against a motif database, with nulls."""

    def __init__(self, database: MotifDatabase, min_overlap: int = 5, n_null: int = 50, seed: int = 0):
        self.database, self.min_overlap, self.n_null = database, min_overlap, n_null
        rng = np.random.default_rng(seed)
        width = max(p.shape[0] for p in database.ppms)
        n = len(database)
        self.targets = np.zeros((n * (1 + n_null), width, 4), dtype=np.float32)  # real, then nulls per motif
        self.target_mask = np.zeros((n * (1 + n_null), width), dtype=np.float32)
        weighted = [information_weighted(ppm) for ppm in database.ppms]
        columns = np.concatenate(weighted)  # every column of the database: the null's pool
        for i, matrix in enumerate(weighted):
            W = matrix.shape[0]
            self.targets[i, :W], self.target_mask[i, :W] = matrix, 1
            for s in range(n_null):  # random database columns, as many as the motif has
                row = n + i * n_null + s
                self.targets[row, :W], self.target_mask[row, :W] = columns[rng.integers(0, len(columns), W)], 1
        self.lengths = self.target_mask.sum(1)

    def best_similarity(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best similarity of a (Lq, 4) query, already centred, against every target row, and
        the offset (target column 0 sits at query column `offset`) and strand (+ / -) giving it."""
        width = self.targets.shape[1]
        best = np.full(len(self.targets), -np.inf, dtype=np.float32)
        best_offset = np.zeros(len(self.targets), dtype=np.int64)
        best_strand = np.full(len(self.targets), "+", dtype=object)
        target_energy = np.maximum((self.targets ** 2).sum((1, 2)), 1e-12)  # (n,)
        for strand, q in (("+", query), ("-", query[::-1, ::-1])):  # reverse complement: A C G T reversed
            Lq = q.shape[0]
            padded = np.zeros((width + Lq + width, 4), dtype=np.float32)
            padded[width:width + Lq] = q
            present = np.zeros(width + Lq + width, dtype=np.float32)
            present[width:width + Lq] = 1
            offsets = np.arange(-(width - 1), Lq)  # query column of target column 0
            # window o: the query columns facing target columns 0..W-1
            index = width + offsets[:, None] + np.arange(width)[None, :]  # (O, W) rows of `padded`
            windows, window_present = padded[index], present[index]  # (O, W, 4), (O, W)
            dot = np.einsum("njc,ojc->no", self.targets, windows, optimize=True)  # (n, O)
            overlap = self.target_mask @ window_present.T  # (n, O) columns facing each other
            need = np.minimum(self.min_overlap, np.minimum(self.lengths[:, None], Lq))
            # over the union of the columns: what either matrix has where the other has nothing counts
            sim = np.where(overlap >= need, dot / np.sqrt(target_energy[:, None] * (q ** 2).sum()), -np.inf)
            column = sim.argmax(1)
            value = sim[np.arange(len(sim)), column]
            better = value > best
            best[better], best_offset[better], best_strand[better] = value[better], offsets[column[better]], strand
        return best, best_offset, best_strand

    def match(self, query: np.ndarray) -> pd.DataFrame:
        """One row per database motif, best first: id, name, similarity, z, p, q, offset, strand."""
        query = centred(np.asarray(query, dtype=np.float32))
        if query.ndim != 2 or query.shape[1] != 4 or not np.abs(query).sum():
            raise GenofmInputError(f"a query motif must be a non-zero (W, 4) matrix, not shape {query.shape}")
        sim, offset, strand = self.best_similarity(query)
        n = len(self.database)
        real, null = sim[:n], sim[n:].reshape(n, self.n_null)
        z = (real - null.mean(1)) / np.maximum(null.std(1), 1e-6)
        p = norm.sf(z)  # the null's best similarities taken as Gaussian (TOMTOM fits its null too)
        order = np.argsort(p)
        q = np.empty(n)
        q[order] = np.minimum.accumulate((p[order] * n / np.arange(1, n + 1))[::-1])[::-1].clip(max=1)
        table = pd.DataFrame({"id": self.database.ids, "name": self.database.names, "similarity": real, "z": z,
                              "p": p, "q": q, "offset": offset[:n], "strand": strand[:n]})
        return table.sort_values(["similarity", "z"], ascending=False, ignore_index=True)


# --- TF-MoDISco -----------------------------------------------------------------------------

@dataclass
class Pattern:
    name: str  # pos_patterns.pattern_0 ...
    sign: int  # +1: raises the target, -1: lowers it
    n_seqlets: int
    cwm: np.ndarray  # (W, 4) mean contribution of each base (A C G T) over the seqlets
    ppm: np.ndarray  # (W, 4) base frequencies over the seqlets


def discover_patterns(one_hot: np.ndarray, hypothetical: np.ndarray, max_seqlets: int = 2000,
                      **modisco_args) -> list[Pattern]:
    """modisco-lite's TF-MoDISco on (N, L, 4) one-hot sequences and mean-centred hypothetical
    contributions (A C G T); `modisco_args` go to modiscolite.tfmodisco.TFMoDISco."""
    try:
        from modiscolite.tfmodisco import TFMoDISco
    except ImportError as err:
        raise GenofmInputError("motif discovery needs modisco-lite (pip install 'genofm[motifs]')") from err
    one_hot, hypothetical = np.asarray(one_hot, dtype=np.float32), np.asarray(hypothetical, dtype=np.float32)
    if one_hot.shape != hypothetical.shape or one_hot.ndim != 3 or one_hot.shape[2] != 4:
        raise GenofmInputError(f"one-hot {one_hot.shape} and hypothetical {hypothetical.shape} must both be (N, L, 4)")
    length = one_hot.shape[1]
    chosen = modisco_defaults() | modisco_args
    pattern = check_region_width(length, modisco_args)
    called = seqlets_called(one_hot, hypothetical, chosen)
    try:
        pos, neg = TFMoDISco(one_hot=one_hot, hypothetical_contribs=hypothetical,
                             max_seqlets_per_metacluster=max_seqlets, **modisco_args)
    except ZeroDivisionError:
        # modisco-lite fits its seqlet thresholds against a null on each side of the
        # attributions' mode; when the windows all lie on one side there is no null to fit
        negative = float(((one_hot * hypothetical).sum(2) < 0).mean())
        log.warning("TF-MoDISco found no seqlets: the attributions lie almost all on one side of their "
                    "mode (%.0f%% of positions negative), so no window stands out; no patterns", 100 * negative)
        return []
    patterns = []
    for prefix, sign, found in (("pos_patterns", 1, pos), ("neg_patterns", -1, neg)):
        for i, p in enumerate(found or []):
            patterns.append(Pattern(f"{prefix}.pattern_{i}", sign, len(p.seqlets),
                                    np.asarray(p.contrib_scores), np.asarray(p.sequence)))
    held = sum(p.n_seqlets for p in patterns)
    log.info("TF-MoDISco called %d seqlets in %d regions of %d bases; its %d patterns hold %d of them", called,
             one_hot.shape[0], length, len(patterns), held)
    if called and held < called / 4 and 2 * pattern >= length:
        # a seqlet is widened to its pattern plus flanks while clustering, and dropped where that
        # crosses the region's end: on short regions most are lost this way
        log.warning("only %d of %d seqlets ended in a pattern: a pattern with its flanks (%d bases) spans more than "
                    "half of each region (%d), so seqlets near the regions' ends are dropped; narrower "
                    "pattern_window / pattern_flank keep them (docs/attributions.md)", held, called, pattern, length)
    return patterns


def check_region_width(length: int, modisco_args: dict, where: str = "") -> int:
    """Refuse regions of `length` bases (the longest, as attributions are padded to it) that are
    shorter than a seqlet or a pattern with its flanks; returns the widened pattern's width.
    The attribute rule checks before attributing, so a misfit stops the job in seconds."""
    chosen = modisco_defaults() | modisco_args
    seqlet = chosen["sliding_window_size"] + 2 * chosen["flank_size"]
    pattern = chosen["trim_to_window_size"] + 2 * chosen["initial_flank_to_add"]
    if max(seqlet, pattern) > length:
        raise GenofmInputError(f"{where + ': ' if where else ''}regions of {length} bases are shorter than "
                               f"TF-MoDISco's seqlets (seqlet_window + 2 seqlet_flank = {seqlet}) or patterns "
                               f"(pattern_window + 2 pattern_flank = {pattern}): narrow them in the attribution "
                               "settings")
    return pattern


def modisco_defaults() -> dict:
    """modiscolite.tfmodisco.TFMoDISco's keyword arguments and their defaults."""
    from modiscolite.tfmodisco import TFMoDISco

    return {name: p.default for name, p in inspect.signature(TFMoDISco).parameters.items()
            if p.default is not inspect.Parameter.empty}


def seqlets_called(one_hot: np.ndarray, hypothetical: np.ndarray, chosen: dict) -> int:
    """How many seqlets TF-MoDISco's first step calls, before clustering: the same call as
    modiscolite.tfmodisco.TFMoDISco's (a sliding-window sum against its null) with its
    arguments `chosen` (all of them, defaults included), counted."""
    from modiscolite.extract_seqlets import extract_seqlets

    window, flank = chosen["sliding_window_size"], chosen["flank_size"]
    try:
        coords, _ = extract_seqlets(attribution_scores=(one_hot * hypothetical).sum(2), window_size=window, flank=flank,
                                    suppress=int(0.5 * window) + flank, target_fdr=chosen["target_seqlet_fdr"],
                                    min_passing_windows_frac=chosen["min_passing_windows_frac"],
                                    max_passing_windows_frac=chosen["max_passing_windows_frac"],
                                    weak_threshold_for_counting_sign=chosen["weak_threshold_for_counting_sign"])
    except ZeroDivisionError:  # no null to fit (see discover_patterns)
        return 0
    return len(coords)


def match_patterns(patterns: list[Pattern], matcher: Matcher, n_next: int = 3,
                   trim_fraction: float = 0.3) -> tuple[pd.DataFrame, dict]:
    """One row per pattern: n seqlets, its best JASPAR match (id, name, similarity, z, p, q,
    strand) and the next n_next matches; and each pattern's full match table by name."""
    rows, tables = [], {}
    for p in patterns:
        a, b = trim(p.cwm, trim_fraction)
        table = matcher.match(p.sign * p.cwm[a:b])
        tables[p.name] = table
        top = table.iloc[0]
        rows.append({"pattern": p.name, "sign": "+" if p.sign > 0 else "-", "n_seqlets": p.n_seqlets,
                     "width": b - a, "best_id": top["id"], "best_name": top["name"],
                     "similarity": top["similarity"], "z": top["z"], "p": top["p"], "q": top["q"],
                     "strand": top["strand"], "offset": int(top["offset"]),
                     "next_matches": "; ".join(f"{r['id']} {r['name']} (z {r['z']:.1f})"
                                               for _, r in table.iloc[1:1 + n_next].iterrows())})
    return pd.DataFrame(rows), tables


def recovered(summary: pd.DataFrame, planted_ids) -> tuple[set[str], set[str]]:
    """Which planted JASPAR matrices came back in match_patterns' summary: as a pattern's best
    match, and among its best and next matches. Compared by base ID (MA0506), because the
    database holds the latest version of a matrix (MA0506.3) and a design may use an older one."""
    base = {i.split(".")[0]: i for i in planted_ids}
    best = {i.split(".")[0] for i in summary["best_id"]}
    listed = best | {m.split(".")[0] for text in summary["next_matches"].fillna("")
                     for m in re.findall(r"MA\d+\.\d+", text)}
    return {base[b] for b in best & set(base)}, {base[b] for b in listed & set(base)}


def plot_matches(patterns: list[Pattern], summary: pd.DataFrame, database: MotifDatabase, path,
                 trim_fraction: float = 0.3, title: str = "") -> None:
    """One row per pattern: its trimmed CWM (in the strand that matched; negative patterns
    keep their sign) beside the information-content logo of its best JASPAR match, aligned."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_png

    if not patterns:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "no patterns found", ha="center", va="center")
        ax.axis("off")
        save_png(fig, path)
        return
    fig, axes = plt.subplots(len(patterns), 2, figsize=(12, 2.0 * len(patterns)), squeeze=False)
    for (ax_cwm, ax_db), p, (_, row) in zip(axes, patterns, summary.iterrows()):
        a, b = trim(p.cwm, trim_fraction)
        cwm = p.cwm[a:b] if row["strand"] == "+" else p.cwm[a:b][::-1, ::-1]
        ppm = database.ppms[database.index(row["best_id"])]
        offset = int(row["offset"])  # JASPAR column 0 faces this column of the (oriented) pattern
        lo, hi = min(0, offset) - 0.5, max(cwm.shape[0], offset + ppm.shape[0]) - 0.5
        logomaker.Logo(pd.DataFrame(cwm, columns=list(ACGT)), ax=ax_cwm)
        ax_cwm.set_xlim(lo, hi)
        ax_cwm.axhline(0, color="grey", lw=0.5)
        ax_cwm.set_title(f"{p.name} ({p.n_seqlets} seqlets): contribution (CWM), "
                         f"{'raises' if p.sign > 0 else 'lowers'} the target, strand {row['strand']}", fontsize=8)
        bits = 2 + (ppm * np.log2(ppm)).sum(1, keepdims=True)
        logomaker.Logo(pd.DataFrame(ppm * bits, columns=list(ACGT), index=offset + np.arange(ppm.shape[0])), ax=ax_db)
        ax_db.set_xlim(lo, hi)
        ax_db.set_ylim(0, 2)
        ax_db.set_ylabel("bits", fontsize=8)
        ax_db.set_title(f"best JASPAR match {row['best_id']} {row['best_name']}: similarity {row['similarity']:.2f}, "
                        f"z {row['z']:.1f}, q {row['q']:.2g}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=110)



def motif_report(one_hot_npy, hypothetical_npy, out_table, out_png, title: str = "", max_regions: int | None = None,
                 collection: str = "CORE", tax_group: str = "vertebrates", n_null: int = 50,
                 **modisco_args) -> pd.DataFrame:
    """TF-MoDISco on saved attributions (genofm.attribution.attribute_regions' .npy files; the
    first max_regions), each pattern matched against JASPAR: the summary table (TSV) and the
    logos (PNG), both written atomically. Returns the table."""
    from .atomic import atomic_paths

    one_hot, hypothetical = np.load(one_hot_npy, mmap_mode="r"), np.load(hypothetical_npy, mmap_mode="r")
    if one_hot.shape != hypothetical.shape:
        raise GenofmInputError(f"{one_hot_npy} {one_hot.shape} and {hypothetical_npy} {hypothetical.shape} differ")
    rows = slice(None, max_regions)
    # writable copies: modisco's numba kernels take no read-only (memory-mapped) arrays
    patterns = discover_patterns(np.array(one_hot[rows]), np.array(hypothetical[rows]), **modisco_args)
    database = jaspar_database(collection, tax_group)
    summary, _ = match_patterns(patterns, Matcher(database, n_null=n_null))
    if summary.empty:
        summary = pd.DataFrame(columns=["pattern", "sign", "n_seqlets", "width", "best_id", "best_name",
                                        "similarity", "z", "p", "q", "strand", "offset", "next_matches"])
    log.info("%d patterns from %s:\n%s", len(patterns), hypothetical_npy, summary.to_string())
    with atomic_paths(out_table, out_png) as (tmp_table, tmp_png):
        summary.to_csv(tmp_table, sep="\t", index=False, float_format="%.4g")
        plot_matches(patterns, summary, database, tmp_png, title=title)
    return summary
