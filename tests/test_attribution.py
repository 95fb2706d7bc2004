"""Attributions (genofm.attribution) and motif discovery and matching (genofm.motifs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from genofm.attribution import (AttributionSettings, Attributor, HeadTarget, LikelihoodTarget, attribute_regions,
                                substitution_slots, base_codes)
from genofm.config import AttributionTaskSettings
from genofm.embed import EmbedConfig, Embedder
from genofm.errors import GenofmInputError
from genofm.heads import ProbeHead, model_fingerprint
from genofm.model import DNALM, ModelConfig
from genofm.tokenizer import CLS, KmerTokenizer

ACGT = "ACGT"


def tiny_model(tokenizer, causal=False, max_len=160, seed=0, **extra):
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tokenizer.vocab_size, max_len=max_len, n_layers=2, d_model=32, n_heads=4, d_ff=64,
                      causal=causal, extra={"tokenizer": {"k": tokenizer.k, "overlapping": tokenizer.overlapping}},
                      **extra)
    return DNALM(cfg).eval()


def random_head(d=32, objective="classification", output="logistic", embedding=None, seed=0, hidden=0):
    rng = np.random.default_rng(seed)
    n_out = {"logistic": 1, "softmax": 3, "identity": 1}[output]
    classes = {"logistic": ["no", "yes"], "softmax": ["a", "b", "c"], "identity": []}[output]
    sizes = [d] + ([hidden] if hidden else []) + [n_out]
    weights = [rng.normal(size=(a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=b) * 0.1 for b in sizes[1:]]
    return ProbeHead(objective, classes, rng.normal(size=d) * 0.1, rng.uniform(0.5, 2, size=d), weights, biases,
                     output, {"embedding": embedding or {"layer": -1, "pooling": "mean"}})


def random_seqs(n, length, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(ACGT), length)) for _ in range(n)]


class LinearTarget:
    """f = sum over tokens of w . embedding: first-order effects are exact."""

    rc_average = False

    def __init__(self, d, seed=0):
        self.w = torch.from_numpy(np.random.default_rng(seed).normal(size=d)).float()

    def __call__(self, model, ids, embeddings, lengths):
        return (embeddings * self.w).sum((1, 2))


def exact_substitution_effects(model, tokenizer, target, seq):
    """(L, 4) f(seq with base p -> b) - f(seq), A C G T, by re-tokenizing each mutant."""
    def f(s):
        ids = torch.from_numpy(np.concatenate([[CLS], tokenizer.encode(s, add_special_tokens=False)]))[None]
        with torch.no_grad():
            return float(target(model, ids, model.embed(ids), [ids.shape[1] - 1])[0])
    ref = f(seq)
    out = np.zeros((len(seq), 4))
    for p, base in enumerate(seq):
        for c, alt in enumerate(ACGT):
            if base != "N" and alt != base:
                out[p, c] = f(seq[:p] + alt + seq[p + 1:]) - ref
    return out


@pytest.mark.parametrize("k,overlapping", [(6, False), (6, True), (3, False), (1, False)])
def test_first_order_effect_equals_substitution_for_a_linear_target(k, overlapping):
    tokenizer = KmerTokenizer(k=k, overlapping=overlapping)
    model = tiny_model(tokenizer)
    target = LinearTarget(32)
    seq = "ACGTTGCAAGCTAGGCTTANNACGTACGATCGATTGCAGTA"  # an N run and leftover bases
    out = Attributor(model, tokenizer, target, AttributionSettings(method="input_x_gradient")).attribute([seq])
    exact = exact_substitution_effects(model, tokenizer, target, seq)
    known = np.array([b != "N" for b in seq])
    expected = np.where(known[:, None], exact - exact.mean(1, keepdims=True), 0)
    np.testing.assert_allclose(out["hypothetical"][0], expected, atol=2e-4)
    assert out["one_hot"][0].sum() == known.sum()


@pytest.mark.parametrize("k,overlapping", [(6, True), (1, False)])
def test_ism_is_the_exact_substitution_effect_of_a_nonlinear_target(k, overlapping):
    """Saturation mutagenesis: each substitution's own change of a probe head's log-odds (a
    nonlinear target, which no gradient gives exactly), re-tokenized, N left at zero."""
    tokenizer = KmerTokenizer(k=k, overlapping=overlapping)
    model = tiny_model(tokenizer)
    target = HeadTarget(random_head(hidden=8))
    seq = "ACGTTGCAAGCTAGGCTTANNACGTACGATCGATTGCAGTA"
    out = Attributor(model, tokenizer, target, AttributionSettings(method="ism", batch_regions=1)).attribute([seq])
    exact = exact_substitution_effects(model, tokenizer, target, seq)
    known = np.array([b != "N" for b in seq])
    np.testing.assert_allclose(out["hypothetical"][0], np.where(known[:, None], exact - exact.mean(1, keepdims=True),
                                                                0), atol=1e-5)
    gradient = Attributor(model, tokenizer, target, AttributionSettings(method="input_x_gradient")).attribute([seq])
    assert np.abs(gradient["hypothetical"][0] - out["hypothetical"][0]).max() > 1e-3  # not first-order
    assert np.isnan(out["baseline_target"]).all() and np.isfinite(out["target"]).all()


def test_k1_is_input_times_gradient_on_one_hot_bases():
    tokenizer = KmerTokenizer(k=1)
    model = tiny_model(tokenizer)
    target = HeadTarget(random_head())
    seq = random_seqs(1, 60)[0]
    out = Attributor(model, tokenizer, target, AttributionSettings(method="input_x_gradient")).attribute([seq])
    # the reference: the embedding layer as a linear map of the one-hot bases, autograd on the one-hot
    channels = [tokenizer.token_to_id[b] for b in ACGT]
    one_hot = torch.zeros(len(seq), 4)
    one_hot[torch.arange(len(seq)), torch.tensor([ACGT.index(b) for b in seq])] = 1
    one_hot.requires_grad_(True)
    ids = torch.tensor([[CLS] + [tokenizer.token_to_id[b] for b in seq]])
    E = model.embed.weight.detach()
    embeddings = torch.cat([E[CLS][None], one_hot @ E[channels]])[None]
    target(model, ids, embeddings, [len(seq)]).sum().backward()
    grad = one_hot.grad.numpy()  # (L, 4): the hypothetical contributions of input x gradient
    np.testing.assert_allclose(out["hypothetical"][0], grad - grad.mean(1, keepdims=True), atol=1e-5)
    contribution = (out["one_hot"][0] * out["hypothetical"][0]).sum(1)
    np.testing.assert_allclose(contribution, (grad * one_hot.detach().numpy()).sum(1) - grad.mean(1), atol=1e-5)


@pytest.mark.parametrize("kind", ["head", "head_softmax_mlp", "regression", "mlm", "causal"])
def test_integrated_gradients_are_complete(kind):
    tokenizer = KmerTokenizer(k=6)
    model = tiny_model(tokenizer, causal=kind == "causal")
    target = {"head": HeadTarget(random_head()),
              "head_softmax_mlp": HeadTarget(random_head(output="softmax", hidden=8), "b"),
              "regression": HeadTarget(random_head(objective="regression", output="identity")),
              "mlm": LikelihoodTarget(mask_groups=3), "causal": LikelihoodTarget()}[kind]
    seqs = random_seqs(3, 150) + random_seqs(2, 97, seed=1)  # padding in the batch
    out = Attributor(model, tokenizer, target, AttributionSettings(steps=24)).attribute(seqs)
    gap = out["target"] - out["baseline_target"]
    tolerance = 0.05 if kind == "head_softmax_mlp" else 2e-3  # ReLU kinks: the quadrature is not exact there
    np.testing.assert_allclose(out["token_sum"], gap, rtol=tolerance, atol=tolerance * np.abs(gap).max())
    assert np.abs(gap).min() > 0  # a real test: the baseline differs from the input


@pytest.mark.parametrize("embedding", [
    {"layer": -1, "pooling": "mean"}, {"layer": 1, "pooling": "cls"},
    {"layer": 2, "pooling": "center", "center_tokens": 4}, {"layer": -1, "pooling": "mean", "rc_average": True}])
def test_head_target_is_the_probe_on_the_embedder_vectors(embedding):
    tokenizer = KmerTokenizer(k=6)
    model = tiny_model(tokenizer)
    head = random_head(embedding=embedding)
    seqs = random_seqs(3, 90) + random_seqs(2, 61, seed=2)
    cfg = EmbedConfig(**{k: v for k, v in embedding.items()})
    vectors = Embedder(model, tokenizer, cfg).embed_sequences(seqs).numpy()
    p = head.predict(vectors)[:, 1]
    out = Attributor(model, tokenizer, HeadTarget(head), AttributionSettings(method="input_x_gradient")).attribute(seqs)
    np.testing.assert_allclose(out["target"], np.log(p / (1 - p)), rtol=1e-4, atol=1e-5)


def test_reverse_strand_averaging_maps_back_to_the_forward_bases():
    """With rc_average the map is the mean of both strands' maps: for a strand-symmetric
    linear target it must equal the exact substitution effects of the averaged target."""
    tokenizer = KmerTokenizer(k=1)
    model = tiny_model(tokenizer)
    target = LinearTarget(32)
    seq = random_seqs(1, 40)[0]
    forward = Attributor(model, tokenizer, target, AttributionSettings(method="input_x_gradient")).attribute([seq])
    target.rc_average = True
    both = Attributor(model, tokenizer, target, AttributionSettings(method="input_x_gradient")).attribute([seq])
    # k=1 and a per-token linear target: the reverse strand scores base b at p as complement(b) at L-1-p
    w_score = (model.embed.weight.detach() @ target.w).numpy()
    ids = [tokenizer.token_to_id[b] for b in ACGT]
    per_base = w_score[ids]  # A C G T
    comp = per_base[[3, 2, 1, 0]]  # score of the complement
    expected = 0.5 * (per_base - per_base.mean()) + 0.5 * (comp - comp.mean())
    np.testing.assert_allclose(both["hypothetical"][0], np.tile(expected, (len(seq), 1)), atol=1e-5)
    assert not np.allclose(forward["hypothetical"][0], both["hypothetical"][0])


def test_integrated_gradients_match_captum():
    captum = pytest.importorskip("captum.attr")
    tokenizer = KmerTokenizer(k=6)
    model = tiny_model(tokenizer)
    target = HeadTarget(random_head())
    seqs = random_seqs(2, 120)
    attributor = Attributor(model, tokenizer, target, AttributionSettings(steps=16))
    bodies = [tokenizer.encode(s, add_special_tokens=False) for s in seqs]
    ids = attributor.batch_ids(bodies)
    grad, _, _, delta = attributor.gradients(ids, [b.size for b in bodies])
    ours = (grad * delta).sum(-1)  # (B, T) token attributions
    from genofm.attribution import embeddings_fed, uniform_baseline

    for i in range(len(seqs)):
        row = ids[i:i + 1]

        def forward(embeddings):
            return target(model, row.expand(embeddings.shape[0], -1), embeddings, [bodies[i].size] * embeddings.shape[0])

        ig = captum.IntegratedGradients(forward)
        theirs = ig.attribute(model.embed(row).detach(), baselines=uniform_baseline(model, tokenizer, row),
                              n_steps=16, method="gausslegendre").sum(-1)[0]
        np.testing.assert_allclose(ours[i].numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)
    assert embeddings_fed  # imported for the reader: captum runs the model through the same hook


def test_errors_name_the_region():
    tokenizer = KmerTokenizer(k=6)
    model = tiny_model(tokenizer, max_len=16)
    attributor = Attributor(model, tokenizer, HeadTarget(random_head()))
    with pytest.raises(GenofmInputError, match="longer than the model's context"):
        attributor.attribute(random_seqs(1, 200))
    with pytest.raises(GenofmInputError, match="not one of ACGTN|is not ACGTN"):
        attributor.attribute(["ACGTXACGT"], ["chr1:5-14"])
    with pytest.raises(GenofmInputError, match="class 'maybe'"):
        HeadTarget(random_head(), "maybe")
    with pytest.raises(GenofmInputError, match="method must be one of integrated_gradients, input_x_gradient, ism, not .saliency."):
        AttributionSettings(method="saliency")
    with pytest.raises(GenofmInputError, match="tokens, but its bases make"):
        substitution_slots(tokenizer, np.arange(3), base_codes("ACGTACGTACGTACGT", "r1"), "r1")


def test_attribute_regions_writes_arrays_and_index(tmp_path):
    tokenizer = KmerTokenizer(k=6)
    model = tiny_model(tokenizer)
    model.save_pretrained(tmp_path / "model")
    head = random_head(embedding={"layer": -1, "pooling": "mean", "center_tokens": 16, "rc_average": False,
                                  "window_overlap": 32})
    head.meta["model_sha256"] = model_fingerprint(tmp_path / "model")
    head.save(tmp_path / "head")
    seqs = random_seqs(5, 120) + random_seqs(2, 90, seed=3)
    table = pa.table({"chrom": ["chr1"] * 7, "start": list(range(0, 700, 100)), "end": list(range(120, 820, 100)),
                      "strand": ["+"] * 7, "name": [f"r{i}" for i in range(7)], "label": [0] * 7, "sequence": seqs})
    pq.write_table(table, tmp_path / "regions.parquet")
    paths = [tmp_path / "out" / name for name in ("one_hot.npy", "hypothetical.npy", "index.parquet")]
    settings = AttributionSettings(steps=4, batch_regions=2, chunk_regions=3)
    assert attribute_regions(tmp_path / "model", tmp_path / "regions.parquet", *paths, tmp_path / "head", settings) == 7
    one_hot, hyp = np.load(paths[0]), np.load(paths[1])
    index = pd.read_parquet(paths[2])
    assert one_hot.shape == hyp.shape == (7, 120, 4)
    assert list(index["name"]) == [f"r{i}" for i in range(7)] and list(index["length"]) == [120] * 5 + [90] * 2
    assert one_hot[5:, 90:].sum() == 0 and hyp[5:, 90:].sum() == 0  # padding
    direct = Attributor(model, tokenizer, HeadTarget(head), settings).attribute(seqs[5:])
    np.testing.assert_allclose(hyp[5:, :90], direct["hypothetical"], atol=1e-6)
    assert np.isfinite(index[["target", "baseline_target", "token_sum"]].to_numpy()).all()
    assert pq.read_schema(paths[2]).metadata[b"target"] == b"log-odds of class yes"
    # a head trained on another model is refused
    other = tmp_path / "other"
    tiny_model(tokenizer, seed=1).save_pretrained(other)
    with pytest.raises(GenofmInputError, match="not the one the probe was trained on"):
        attribute_regions(other, tmp_path / "regions.parquet", *paths, tmp_path / "head", settings)
    # without a head: the LM's likelihood, here for at most 3 regions
    assert attribute_regions(tmp_path / "model", tmp_path / "regions.parquet", *paths, None, settings,
                             max_regions=3) == 3
    assert pq.read_schema(paths[2]).metadata[b"target"] == b"log-likelihood"


# --- matching against JASPAR, logos, motif recovery --------------------------------------------

@pytest.fixture(scope="module")
def jaspar():
    pytest.importorskip("pyjaspar")
    from genofm.motifs import Matcher, jaspar_database

    database = jaspar_database()
    return database, Matcher(database, n_null=30)


def test_a_noisy_jaspar_matrix_matches_itself_first_and_a_shuffled_one_does_not(jaspar):
    from genofm.motifs import information_weighted

    database, matcher = jaspar
    rng = np.random.default_rng(0)
    for motif_id in ("MA0139.2", "MA0079.5", "MA0108.3"):  # CTCF, SP1, TBP (this release's versions)
        weighted = information_weighted(database.ppms[database.index(motif_id)])
        noisy = weighted + rng.normal(0, 0.1, weighted.shape)
        forward, reverse = matcher.match(noisy), matcher.match(noisy[::-1, ::-1])
        assert forward.iloc[0]["id"] == reverse.iloc[0]["id"] == motif_id
        assert forward.iloc[0]["strand"] == "+" and reverse.iloc[0]["strand"] == "-"
        assert forward.iloc[0]["similarity"] > 0.9 and forward.iloc[0]["q"] < 0.05
    ctcf = information_weighted(database.ppms[database.index("MA0139.2")])
    shuffled = matcher.match(ctcf[rng.permutation(len(ctcf))])
    assert "CTCF" not in set(shuffled["name"].head(5)) and shuffled.iloc[0]["similarity"] < 0.8


def test_attributions_all_of_one_sign_give_no_patterns_and_say_why(caplog):
    """modisco-lite has no null to fit on the empty side; genofm reports no patterns, and why."""
    pytest.importorskip("modiscolite")
    from genofm.motifs import discover_patterns

    rng = np.random.default_rng(0)
    one_hot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (200, 100))]
    hypothetical = -one_hot + 0.05 * rng.normal(size=one_hot.shape)  # every reference base lowers the target
    hypothetical -= hypothetical.mean(-1, keepdims=True)
    with caplog.at_level("WARNING"):
        assert discover_patterns(one_hot, hypothetical) == []
    assert "no seqlets" in caplog.text and "100% of positions negative" in caplog.text


def test_motif_settings_wider_than_the_regions_are_refused():
    pytest.importorskip("modiscolite")
    from genofm.motifs import discover_patterns

    one_hot = np.eye(4, dtype=np.float32)[np.zeros((10, 40), dtype=int)]
    with pytest.raises(GenofmInputError, match=r"regions of 40 bases .*pattern_window \+ 2 pattern_flank = 50"):
        discover_patterns(one_hot, one_hot)


def test_region_width_checked_before_attributing():
    """The attribute rule's check (run before the attributions): the message names the task's
    settings and regions; narrowed settings fit the same regions."""
    pytest.importorskip("modiscolite")
    from genofm.motifs import check_region_width

    with pytest.raises(GenofmInputError, match=r"^probes.t.attribution \(r.parquet\): regions of 45 bases"):
        check_region_width(45, {}, where="probes.t.attribution (r.parquet)")
    narrow = AttributionTaskSettings(seqlet_window=15, seqlet_flank=5, pattern_window=20, pattern_flank=3)
    assert check_region_width(45, narrow.modisco_args()) == 26


def test_attribution_settings_default_to_modiscos_own():
    """The config's TF-MoDISco defaults are modisco-lite's, so an unset key changes nothing."""
    pytest.importorskip("modiscolite")
    from genofm.motifs import modisco_defaults

    defaults = modisco_defaults()
    for name, value in AttributionTaskSettings().modisco_args().items():
        assert defaults[name] == value, name


def test_short_regions_lose_seqlets_to_wide_patterns_and_say_so(caplog):
    """Ideal attributions: a planted site's bases (a fixed 12-mer) carry the contribution, at
    random places in 60-base regions. TF-MoDISco's default pattern width with flanks (50) drops
    most seqlets at the regions' ends, and genofm says so; narrower settings keep them."""
    pytest.importorskip("modiscolite")
    from genofm.motifs import discover_patterns

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (400, 60))
    site = np.array([2, 3, 1, 0, 2, 1, 1, 3, 0, 2, 2, 1])
    hypothetical = 0.02 * rng.normal(size=(400, 60, 4))
    for row in range(400):
        at = rng.integers(0, 60 - site.size)
        codes[row, at:at + site.size] = site
        hypothetical[row, at + np.arange(site.size), site] += 1.0
    one_hot = np.eye(4, dtype=np.float32)[codes]
    hypothetical -= hypothetical.mean(-1, keepdims=True)
    fast = {"n_leiden_runs": 4}
    with caplog.at_level("INFO", logger="genofm.motifs"):
        wide = discover_patterns(one_hot, hypothetical, **AttributionTaskSettings(seqlet_window=12, seqlet_flank=4)
                                 .modisco_args(), **fast)
    assert "ended in a pattern" in caplog.text and "narrower pattern_window" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="genofm.motifs"):
        narrow = discover_patterns(one_hot, hypothetical, **AttributionTaskSettings(
            seqlet_window=12, seqlet_flank=4, pattern_window=14, pattern_flank=2).modisco_args(), **fast)
    assert "ended in a pattern" not in caplog.text and "TF-MoDISco called" in caplog.text
    held_wide, held_narrow = (sum(p.n_seqlets for p in found) for found in (wide, narrow))
    print(f"seqlets in patterns: {held_wide} at the default width, {held_narrow} narrowed")
    assert held_narrow > max(2 * held_wide, 200), (held_wide, held_narrow)
    best = max(narrow, key=lambda p: p.n_seqlets)
    consensus = "".join("ACGT"[i] for i in best.cwm.argmax(1))
    assert best.sign == 1 and ("GTCAGCCTAGGC" in consensus or "GCCTAGGCTGAC" in consensus), consensus


def test_logos_of_patterns_and_their_matches(jaspar, tmp_path):
    pytest.importorskip("logomaker")
    from genofm.motifs import Pattern, match_patterns, plot_matches

    database, matcher = jaspar
    ppm = database.ppms[database.index("MA0139.2")]
    flank = np.zeros((4, 4))
    cwm = np.concatenate([flank, ppm * (ppm == ppm.max(1, keepdims=True)), flank])[::-1, ::-1]  # reverse strand
    patterns = [Pattern("pos_patterns.pattern_0", 1, 42, cwm, ppm), Pattern("neg_patterns.pattern_0", -1, 20,
                                                                          -cwm, ppm)]
    summary, tables = match_patterns(patterns, matcher)
    assert list(summary["best_name"]) == ["CTCF", "CTCF"] and list(summary["strand"]) == ["-", "-"]
    assert summary["width"].tolist() == [ppm.shape[0]] * 2 and set(tables) == {p.name for p in patterns}
    plot_matches(patterns, summary, database, tmp_path / "logos.png", title="test")
    assert (tmp_path / "logos.png").read_bytes()[:4] == b"\x89PNG"


def planted_sequences(rng, n, ppms, length=100):
    """Random sequences; two thirds get one site sampled from one of `ppms` (either strand):
    label 1 with a site, 0 without."""
    seqs, labels = [], []
    for _ in range(n):
        seq = rng.choice(list(ACGT), length)
        kind = rng.integers(len(ppms) + 1)
        if kind < len(ppms):
            site = np.array([ACGT[rng.choice(4, p=row / row.sum())] for row in ppms[kind]])
            if rng.random() < 0.5:
                site = np.array([ACGT[3 - ACGT.index(b)] for b in site[::-1]])
            at = rng.integers(10, length - 10 - site.size)
            seq[at:at + site.size] = site
        seqs.append("".join(seq))
        labels.append(int(kind < len(ppms)))
    return seqs, labels


@pytest.mark.slow
def test_motif_recovery_names_the_planted_motifs(tmp_path, capsys):
    """A k=1 convolutional model and a linear head trained (here, on fresh sequences each step)
    to tell sequences with a planted CTCF (MA0139.1) or SP1 (MA0079.3) site from sequences
    without; integrated gradients over 1000 held-out sequences, TF-MoDISco, JASPAR matching."""
    pytest.importorskip("modiscolite")
    pytest.importorskip("logomaker")
    from pyjaspar import jaspardb

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float sums, so the same training run on every machine
    try:
        _recover_planted_motifs(tmp_path, capsys, jaspardb)
    finally:
        torch.set_num_threads(threads)


def _recover_planted_motifs(tmp_path, capsys, jaspardb):
    from genofm.motifs import Matcher, discover_patterns, jaspar_database, match_patterns, plot_matches

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    db = jaspardb()
    ppms = [np.array([db.fetch_motif_by_id(m).counts[b] for b in ACGT], dtype=float).T for m in ("MA0139.1", "MA0079.3")]
    tokenizer = KmerTokenizer(k=1)
    # float64: the training run's rounding, and so the model and its motifs, the same on every CPU
    model = tiny_model(tokenizer, max_len=128, mixer="conv", conv_kernel=9).double()
    linear = torch.nn.Linear(32, 1).double()

    def tensors(seqs, labels):
        ids = np.stack([np.concatenate([[CLS], tokenizer.encode(s, add_special_tokens=False)]) for s in seqs])
        return torch.from_numpy(ids), torch.tensor(labels, dtype=torch.float64)

    model.train()
    optimizer = torch.optim.AdamW([*model.parameters(), *linear.parameters()], lr=5e-3)
    for _ in range(1600):
        ids, y = tensors(*planted_sequences(rng, 32, ppms))
        logit = linear(model(ids, return_logits=False).last_hidden.mean(1))[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    seqs, labels = planted_sequences(rng, 1000, ppms)
    with torch.no_grad():
        ids, y = tensors(seqs, labels)
        accuracy = float(((linear(model(ids, return_logits=False).last_hidden.mean(1))[:, 0] > 0) == (y > 0)).float()
                         .mean())
    head = ProbeHead("classification", ["absent", "present"], np.zeros(32), np.ones(32),
                     [linear.weight.detach().double().numpy().T], [linear.bias.detach().double().numpy()], "logistic",
                     {"embedding": {"layer": -1, "pooling": "mean"}})
    attributor = Attributor(model, tokenizer, HeadTarget(head), AttributionSettings(steps=8))
    outs = [attributor.attribute(seqs[i:i + 100]) for i in range(0, len(seqs), 100)]
    one_hot = np.concatenate([o["one_hot"] for o in outs])
    hypothetical = np.concatenate([o["hypothetical"] for o in outs])
    # settings for 100-base regions (docs/attributions.md): at the default pattern width most
    # seqlets fall off the regions' ends, and SP1 is only a next match
    settings = AttributionTaskSettings(seqlet_window=15, seqlet_flank=5, seqlet_fdr=0.3, pattern_window=20,
                                       pattern_flank=3, min_metacluster_seqlets=20, min_pattern_seqlets=10)
    patterns = discover_patterns(one_hot, hypothetical, n_leiden_runs=8, **settings.modisco_args())
    database = jaspar_database()
    summary, _ = match_patterns(patterns, Matcher(database, n_null=30))
    plot_matches(patterns, summary, database, tmp_path / "planted.png")
    with capsys.disabled():
        print(f"\nheld-out accuracy of the trained model + head: {accuracy:.3f}")
        print(summary.to_string())
    assert accuracy > 0.75
    # both planted motifs come back as a pattern's best match, each significant
    best = summary.groupby("best_name")["q"].min()
    assert {"CTCF", "SP1"} <= set(best.index), summary["best_name"].tolist()
    assert best["CTCF"] < 0.01 and best["SP1"] < 0.01
    assert summary["n_seqlets"].iloc[:2].min() >= 50  # the two largest patterns, not a handful of seqlets


def test_recovered_motifs_are_compared_by_jaspar_base_id():
    summary = pd.DataFrame({"best_id": ["MA0506.3", "MA9999.1"],
                            "next_matches": ["MA0095.4 Yy1 (z 5.0); MA0028.3 ELK1 (z 4.1)", None]})
    from genofm.motifs import recovered

    best, listed = recovered(summary, ["MA0506.1", "MA0095.2", "MA0079.3"])
    assert best == {"MA0506.1"} and listed == {"MA0506.1", "MA0095.2"}


def test_attributed_regions_are_chosen_by_the_tasks_labels_table_where_it_has_one(tmp_path):
    """attribution.label reads the task's labels table (keyed by region name) when the task has
    one, the region set's own labels otherwise; a label no region has is named with its source."""
    from genofm.attribution import region_width, selected_rows

    regions = tmp_path / "regions.parquet"
    pq.write_table(pa.table({"name": ["r0", "r1", "r2", "r3"], "label": ["a", "b", "a", "b"],
                             "sequence": ["ACGT", "ACGTACGT", "AC", "ACGTAC"]}), regions)
    table = tmp_path / "labels.tsv"
    table.write_text("name\tactivity\tclass\nr3\t1.5\tyes\nr2\t0.1\tno\nr1\t2.0\tyes\nr0\t0.3\tno\n")
    assert selected_rows(regions, label="a").tolist() == [0, 2]
    assert selected_rows(regions, label="yes", labels_table=str(table), labels_column="class").tolist() == [1, 3]
    assert selected_rows(regions, 1, "yes", str(table), "class").tolist() == [1]
    assert region_width(regions, None, "yes", str(table), "class") == 8
    assert region_width(regions, None, "no", str(table), "class") == 4
    with pytest.raises(GenofmInputError, match=r"labels.tsv \(column class\): no region of .* has label 'a' "
                                               r"\(labels: no, yes\)"):
        selected_rows(regions, label="a", labels_table=str(table), labels_column="class")
