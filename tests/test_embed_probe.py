"""Embeddings (pooling, layers, reverse strand, sliding windows, batching) and probes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from genofm.embed import EmbedConfig, Embedder, embed_regions, load_embeddings, windows_of
from genofm.errors import GenofmInputError
from genofm.model import DNALM, ModelConfig
from genofm.heads import ProbeHead, model_fingerprint, predict_regions
from genofm.probe import ProbeConfig, check_labels, kmer_frequencies, labels_from_table, make_estimator, run_probe
from genofm.sequence import reverse_complement
from genofm.tokenizer import KmerTokenizer

TOK = KmerTokenizer(k=3)


def model(max_len=64, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=TOK.vocab_size, max_len=max_len, n_layers=2, d_model=32, n_heads=4, d_ff=64,
                      extra={"tokenizer": {"k": 3, "overlapping": False}})
    return DNALM(cfg).eval()


def random_seq(n, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


def single_pass(m, seq, layer=-1):
    ids = torch.from_numpy(TOK.encode(seq))[None]
    with torch.no_grad():
        out = m(ids, output_hidden_states=True)
    return (out.last_hidden if layer == -1 else out.hidden_states[layer])[0]


@pytest.mark.parametrize("layer", [-1, 0, 1, 2])
def test_pooling_equals_a_single_pass_when_the_region_fits(layer):
    m, seq = model(), random_seq(150, 1)  # 50 tokens + <cls> <= 64
    states = single_pass(m, seq, layer)
    for pooling, expected in (("mean", states.mean(0)), ("cls", states[0]), ("center", states[1:][25 - 4:25 + 4].mean(0))):
        e = Embedder(m, TOK, EmbedConfig(layer=layer, pooling=pooling, center_tokens=8))
        torch.testing.assert_close(e.embed_sequences([seq])[0], expected, atol=1e-5, rtol=1e-5)


def test_sliding_windows_cover_long_regions():
    assert windows_of(np.arange(10), 20, 4) == [(0, 10)]
    spans = windows_of(np.arange(100), 30, 10)
    assert spans[0] == (0, 30) and spans[-1] == (70, 100)
    assert all(b - a == 30 for a, b in spans)
    covered = np.zeros(100, bool)
    for a, b in spans:
        covered[a:b] = True
    assert covered.all()
    short, long = model(max_len=24), model(max_len=200)  # same weights (same seed), other context
    seq = random_seq(300, 2)  # 100 tokens: 5+ windows for the short model, one pass for the long
    v_short = Embedder(short, TOK, EmbedConfig(window_overlap=8)).embed_sequences([seq])[0]
    v_long = Embedder(long, TOK, EmbedConfig()).embed_sequences([seq])[0]
    assert torch.isfinite(v_short).all() and v_short.shape == v_long.shape
    # with RoPE the windowed vector is close to, not equal to, the single pass
    assert torch.nn.functional.cosine_similarity(v_short, v_long, dim=0) > 0.9


def test_batching_by_length_and_reverse_strand():
    m = model()
    seqs = [random_seq(n, n) for n in (30, 90, 150, 33, 60)]
    batched = Embedder(m, TOK, EmbedConfig(batch_tokens=64)).embed_sequences(seqs)
    alone = torch.stack([Embedder(m, TOK, EmbedConfig()).embed_sequences([s])[0] for s in seqs])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    both = Embedder(m, TOK, EmbedConfig(rc_average=True))
    rc = [reverse_complement(s) for s in seqs]
    expected = (alone + Embedder(m, TOK, EmbedConfig()).embed_sequences(rc)) / 2
    torch.testing.assert_close(both.embed_sequences(seqs), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both.embed_sequences(rc), both.embed_sequences(seqs), atol=1e-5, rtol=1e-5)


def write_regions(path, sequences, labels=None, chroms=None):
    n = len(sequences)
    df = pd.DataFrame({"chrom": chroms or ["c"] * n, "start": np.arange(n) * 1000, "end": 0, "strand": "+",
                       "name": [f"r{i}" for i in range(n)], "label": labels, "sequence": sequences})
    df["end"] = df["start"] + df["sequence"].str.len()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def test_embedding_shards_join_into_the_one_job_file(tmp_path):
    """Regions of mixed lengths in chunks of 3: three shards joined give the one job's .npy and
    index byte for byte; more shards than chunks stop naming the most that work."""
    from genofm.embed import gather_embeddings

    m = model()
    m.save_pretrained(tmp_path / "m")
    write_regions(tmp_path / "r.parquet", [random_seq(40 + 13 * i, i) for i in range(8)], labels=["a"] * 8)
    cfg = EmbedConfig(chunk_regions=3)  # chunks of 3, 3, 2 regions
    embed_regions(tmp_path / "m", tmp_path / "r.parquet", tmp_path / "one.npy", tmp_path / "one.parquet", cfg)
    parts = [tmp_path / f"{i}.npy" for i in range(2)]
    sizes = [embed_regions(tmp_path / "m", tmp_path / "r.parquet", part, None, cfg, shard=(i, 2))
             for i, part in enumerate(parts)]
    assert sizes == [3, 5]
    gather_embeddings(parts, tmp_path / "r.parquet", tmp_path / "joined.npy", tmp_path / "joined.parquet")
    assert (tmp_path / "joined.npy").read_bytes() == (tmp_path / "one.npy").read_bytes()
    assert (tmp_path / "joined.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()
    with pytest.raises(GenofmInputError, match="4 shards, but the region set makes 3 chunk.*at most 3"):
        embed_regions(tmp_path / "m", tmp_path / "r.parquet", tmp_path / "x.npy", None, cfg, shard=(0, 4))
    with pytest.raises(GenofmInputError, match="do not make the 8 rows"):
        gather_embeddings(parts[:1], tmp_path / "r.parquet", tmp_path / "x.npy", tmp_path / "x.parquet")
    assert not (tmp_path / "x.npy").exists()


def test_embed_regions_files_and_mismatch(tmp_path):
    m = model()
    m.save_pretrained(tmp_path / "m")
    write_regions(tmp_path / "r.parquet", [random_seq(120, i) for i in range(7)], labels=["a"] * 7)
    n = embed_regions(tmp_path / "m", tmp_path / "r.parquet", tmp_path / "e.npy", tmp_path / "e.parquet",
                      EmbedConfig(dtype="float16", chunk_regions=3))
    matrix, index = load_embeddings(tmp_path / "e.npy", tmp_path / "e.parquet")
    assert n == 7 and matrix.shape == (7, 32) and matrix.dtype == np.float16 and list(index["name"])[0] == "r0"
    write_regions(tmp_path / "other.parquet", [random_seq(120, 0)] * 3)
    pq.write_table(pq.read_table(tmp_path / "other.parquet", columns=["chrom", "name"]), tmp_path / "i3.parquet")
    with pytest.raises(GenofmInputError, match="has 7 rows but .*i3.parquet lists 3 regions"):
        load_embeddings(tmp_path / "e.npy", tmp_path / "i3.parquet")
    write_regions(tmp_path / "empty_seq.parquet", ["ACGT", ""])
    with pytest.raises(GenofmInputError, match="'r1 in .*' has no sequence"):
        embed_regions(tmp_path / "m", tmp_path / "empty_seq.parquet", tmp_path / "x.npy", tmp_path / "x.parquet",
                      EmbedConfig())
    assert not (tmp_path / "x.npy").exists()
    with pytest.raises(GenofmInputError, match="layer 5 does not exist"):
        Embedder(m, TOK, EmbedConfig(layer=5))


def test_kmer_frequencies():
    freqs = kmer_frequencies(["AACNAA", "acgt"], 2)
    assert freqs.shape == (2, 16)
    assert freqs[0, 0] == pytest.approx(2 / 3) and freqs[0, 1] == pytest.approx(1 / 3)  # AA x2, AC x1, N skipped
    assert freqs[1].sum() == pytest.approx(1.0)


def test_labels_are_checked():
    with pytest.raises(GenofmInputError, match="look like measurements, not classes: set the task's objective: "
                                               "regression"):
        check_labels(pd.Series([f"{x:.3f}" for x in np.linspace(0, 1, 50)]), "x.parquet")
    assert list(check_labels(pd.Series(["0", "1", "1"]), "x")) == ["0", "1", "1"]  # numbered classes are fine
    with pytest.raises(GenofmInputError, match="region 'r2' has the label 'high', not a finite number"):
        check_labels(pd.Series(["1.5", "high", "2"]), "x", "regression", pd.Series(["r1", "r2", "r3"]))
    with pytest.raises(GenofmInputError, match="every region has the label 3: nothing to predict"):
        check_labels(pd.Series(["3", "3.0"]), "x", "regression")
    with pytest.raises(GenofmInputError, match="1 region\\(s\\) have no label, the first 'r2'"):
        check_labels(pd.Series(["1", None]), "x", "regression", pd.Series(["r1", "r2"]))
    np.testing.assert_array_equal(check_labels(pd.Series(["1.5", " 2"]), "x", "regression"), [1.5, 2.0])
    with pytest.raises(GenofmInputError, match="x.parquet: all regions carry the label 'a'"):
        check_labels(pd.Series(["a", "a"]), "x.parquet")
    with pytest.raises(GenofmInputError, match="have no labels"):
        check_labels(pd.Series([None, None]), "x.parquet")
    with pytest.raises(GenofmInputError, match="1 region\\(s\\) have no label"):
        check_labels(pd.Series(["a", None, "b"]), "x.parquet")


@pytest.mark.parametrize("n_classes,classifier", [(2, "logistic"), (3, "logistic"), (2, "mlp")])
def test_probe_separates_informative_embeddings(n_classes, classifier):
    rng = np.random.default_rng(0)
    labels = np.array([f"class{i % n_classes}" for i in range(120)])
    codes = np.searchsorted(np.unique(labels), labels)
    embeddings = rng.normal(size=(120, 16)) + codes[:, None] * 2.0  # informative
    sequences = [random_seq(60, i) for i in range(120)]  # k-mers carry no signal
    index = pd.DataFrame({"chrom": np.where(np.arange(120) < 90, "c1", "c2"), "start": 0, "end": 60, "strand": "+",
                          "name": [f"r{i}" for i in range(120)], "label": labels})
    metrics, predictions, head = run_probe(embeddings, index, sequences, ProbeConfig(folds=4, classifier=classifier),
                                           "t", {"task": "t"})
    # the saved head, applied without scikit-learn, gives the fitted probe's probabilities
    fitted = make_estimator(ProbeConfig(folds=4, classifier=classifier)).fit(embeddings, labels)
    np.testing.assert_allclose(head.predict(embeddings), fitted.predict_proba(embeddings), atol=1e-9)
    assert head.classes == [f"class{i}" for i in range(n_classes)] and head.meta["region_length_median"] == 60
    probe, baseline = metrics["results"]["probe"], metrics["results"]["kmer4_baseline"]
    assert probe["auroc"]["mean"] > 0.95 and len(probe["auroc"]["folds"]) == 4
    assert baseline["auroc"]["mean"] < 0.7 and metrics["probe_beats_baseline"]
    assert predictions["fold"].between(0, 3).all()
    held = run_probe(embeddings, index, sequences, ProbeConfig(holdout_contigs=["c2"], classifier=classifier), "t")[0]
    assert held["folds"] == 1 and held["results"]["probe"]["auroc"]["mean"] > 0.95


def test_labels_from_a_table_keyed_by_region_name(tmp_path, caplog):
    names = pd.Series(["p1", "p2", "p3"])
    table = tmp_path / "labels.tsv"
    table.write_text("name\tactivity\tother\np3\t3.5\tx\np1\t1.5\tx\np2\t2\tx\nunused\t9\tx\n")
    with caplog.at_level("INFO"):
        assert list(labels_from_table(names, str(table), "activity", "set.parquet")) == ["1.5", "2", "3.5"]
    assert "1 row(s) name no region of set.parquet" in caplog.text
    with pytest.raises(GenofmInputError, match="no column 'value' \\(the header has name, activity, other\\)"):
        labels_from_table(names, str(table), "value", "set.parquet")
    table.write_text("name\tactivity\np1\t1\np2\t2\np1\t3\n")
    with pytest.raises(GenofmInputError, match="the region name 'p1' has several rows \\(lines 2 and 4\\)"):
        labels_from_table(names, str(table), "activity", "set.parquet")
    table.write_text("name\tactivity\np1\t1\np2\t2\n")
    with pytest.raises(GenofmInputError, match="1 region\\(s\\) of set.parquet have no row, the first 'p3'"):
        labels_from_table(names, str(table), "activity", "set.parquet")


@pytest.mark.parametrize("regressor", ["ridge", "mlp"])
def test_regression_probe_predicts_values_the_embeddings_carry(regressor):
    rng = np.random.default_rng(1)
    n = 150
    value = rng.normal(size=n)
    embeddings = rng.normal(size=(n, 12))
    embeddings[:, 0] += 2 * value  # the embeddings carry the value, the k-mers do not
    index = pd.DataFrame({"chrom": "c1", "start": 0, "end": 60, "strand": "+", "name": [f"r{i}" for i in range(n)],
                          "label": [f"{v:.4f}" for v in value]})
    cfg = ProbeConfig(objective="regression", regressor=regressor, folds=5)
    metrics, predictions, head = run_probe(embeddings, index, [random_seq(60, i) for i in range(n)], cfg, "t")
    probe, baseline = metrics["results"]["probe"], metrics["results"]["kmer4_baseline"]
    assert metrics["objective"] == "regression" and metrics["cv"] == "5-fold"
    assert probe["spearman"]["mean"] > 0.6 and probe["r2"]["overall"] > 0.3 and len(probe["pearson"]["folds"]) == 5
    assert baseline["spearman"]["overall"] < 0.3 and metrics["probe_beats_baseline"]
    assert predictions["fold"].between(0, 4).all() and predictions["probe_prediction"].notna().all()
    fitted = make_estimator(cfg).fit(embeddings, check_labels(index["label"], "t", "regression"))
    np.testing.assert_allclose(head.predict(embeddings), fitted.predict(embeddings), atol=1e-8)
    assert head.objective == "regression" and head.output == "identity"


def test_probe_head_saves_loads_and_refuses_other_settings(tmp_path):
    rng = np.random.default_rng(2)
    m = model()
    m.save_pretrained(tmp_path / "model")
    embedding = {"layer": -1, "pooling": "mean", "center_tokens": 16, "rc_average": False, "window_overlap": 32}
    labels = np.array(["a", "b"] * 30)
    features = rng.normal(size=(60, 8)) + (labels == "b")[:, None]
    fitted = make_estimator(ProbeConfig()).fit(features, labels)
    head = ProbeHead.from_estimator(fitted, "classification", ["a", "b"],
                                    {"model_sha256": model_fingerprint(tmp_path / "model"), "embedding": embedding,
                                     "tokenizer": "k=3"})
    head.save(tmp_path / "head")
    loaded = ProbeHead.load(tmp_path / "head")
    np.testing.assert_allclose(loaded.predict(features), fitted.predict_proba(features), atol=1e-12)
    loaded.check_compatible(tmp_path / "model", embedding, "predict")  # the same model and settings: fine
    index = pd.DataFrame({"chrom": "c", "start": range(60), "end": range(1, 61), "strand": "+",
                          "name": [f"r{i}" for i in range(60)]})
    table = predict_regions(loaded, features, index, "set")
    assert list(table.columns) == ["chrom", "start", "end", "strand", "name", "p_a", "p_b", "predicted_class"]
    assert (table["predicted_class"] == fitted.predict(features)).all()
    with pytest.raises(GenofmInputError, match="embeddings.pooling is 'cls'; the probe was trained with 'mean'"):
        loaded.check_compatible(tmp_path / "model", embedding | {"pooling": "cls"}, "predict")
    model(seed=1).save_pretrained(tmp_path / "model")  # retrained: other weights
    with pytest.raises(GenofmInputError, match="is not the one the probe was trained on"):
        loaded.check_compatible(tmp_path / "model", embedding, "predict")
    with pytest.raises(GenofmInputError, match="takes 8-dimensional embeddings"):
        loaded.predict(features[:, :4])
    with pytest.raises(GenofmInputError, match="no head.safetensors: not a saved probe head"):
        ProbeHead.load(tmp_path)
