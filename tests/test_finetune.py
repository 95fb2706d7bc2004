"""Fine-tuning: LoRA / IA3 (peft) and full, on the probes' folds; adapters in peft's format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from genofm.errors import GenofmInputError
from genofm.finetune import FinetuneConfig, SequenceClassifier, cross_validate_finetune, encode, predict
from genofm.finetuned import FinetunedHead
from genofm.heads import model_fingerprint
from genofm.model import DNALM, ModelConfig
from genofm.probe import ProbeConfig, folds_of
from genofm.tokenizer import KmerTokenizer

TOK = KmerTokenizer(k=3)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A tiny model and a task a classifier can learn: GC-rich vs AT-rich sequences."""
    directory = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    DNALM(ModelConfig(vocab_size=TOK.vocab_size, max_len=40, n_layers=1, d_model=32, n_heads=2, d_ff=64,
                      extra={"tokenizer": {"k": 3, "overlapping": False}})).save_pretrained(directory)
    rng = np.random.default_rng(0)
    sequences, labels = [], []
    for i in range(60):
        rich = i % 2
        probs = [0.1, 0.4, 0.4, 0.1] if rich else [0.4, 0.1, 0.1, 0.4]
        sequences.append("".join(rng.choice(list("ACGT"), 150, p=probs)))  # 50 tokens: cut to 39
        labels.append("gc" if rich else "at")
    labels = np.array(labels)
    return directory, sequences, labels, folds_of(labels, np.array(["c"] * 60), ProbeConfig(folds=3))


@pytest.mark.parametrize("method", ["lora", "ia3", "full"])
def test_finetune_methods(task, tmp_path, method):
    model_dir, sequences, labels, folds = task
    cfg = FinetuneConfig(method=method, epochs=4, lr=1e-2, batch_size=8)
    summary, proba = cross_validate_finetune(model_dir, sequences, labels, folds, cfg, out_dir=tmp_path / method)
    assert summary["auroc"]["mean"] > 0.9 and len(summary["auroc"]["folds"]) == 3
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    trainable = summary["trainable_parameters"]
    if method == "full":
        assert trainable["trainable"] == trainable["total"]
        assert (tmp_path / method / "classifier.safetensors").exists()
    else:
        assert trainable["trainable"] < trainable["total"] / 2  # adapters + classifier only
        config = json.loads((tmp_path / method / "adapter_config.json").read_text())
        assert config["peft_type"] == method.upper()
        assert (tmp_path / method / "adapter_model.safetensors").exists()
        # the saved adapter reloads with peft onto the pretrained backbone, as FinetunedHead does
        from peft import PeftModel

        backbone = DNALM.from_pretrained(model_dir)
        reloaded = PeftModel.from_pretrained(SequenceClassifier(backbone, 2), str(tmp_path / method)).eval()
        bodies = encode(sequences[:10], TOK, 40)
        np.testing.assert_allclose(FinetunedHead.load(tmp_path / method, model_dir).predict(sequences[:10]),
                                   predict(reloaded, bodies), rtol=1e-5, atol=1e-6)
    meta = json.loads((tmp_path / method / "finetune.json").read_text())
    assert meta["classes"] == ["at", "gc"] and meta["method"] == method and meta["objective"] == "classification"
    assert meta["model_sha256"] == model_fingerprint(model_dir) and meta["region_length_median"] == 150
    # the model trained on every region, applied to them: the classes come back (not a fresh head)
    head = FinetunedHead.load(tmp_path / method, model_dir)
    proba = head.predict(sequences)
    assert roc_auc_score(labels == "gc", proba[:, 1]) > 0.95
    # log-odds of "gc", both strands (the reverse complement of a GC-rich sequence is GC-rich too)
    assert roc_auc_score(labels == "gc", head.single_output(sequences)) > 0.95


def test_a_max_pooled_head_is_saved_and_reloaded_with_its_pooling(task, tmp_path):
    """pooling: max takes each feature's maximum over the real tokens (padding never wins, so a
    region's output does not depend on its batch); finetune.json records it and FinetunedHead
    reloads it: the head's output is the classifier applied to the max-pooled states."""
    from genofm.finetune import batch

    model_dir, sequences, labels, folds = task
    cfg = FinetuneConfig(method="full", epochs=4, lr=1e-2, batch_size=8, pooling="max")
    summary, _ = cross_validate_finetune(model_dir, sequences, labels, folds, cfg, out_dir=tmp_path / "max")
    assert summary["auroc"]["mean"] > 0.9
    assert json.loads((tmp_path / "max" / "finetune.json").read_text())["pooling"] == "max"
    head = FinetunedHead.load(tmp_path / "max", model_dir)
    short = [s[:60 + 3 * i] for i, s in enumerate(sequences[:6])]  # 20..35 tokens: padded in a batch
    together = head.logits(short)
    alone = np.concatenate([head.logits([s]) for s in short])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    classifier = head.model
    with torch.no_grad():
        for i, s in enumerate(short):
            ids = batch(encode([s], TOK, 40))["ids"]
            states = classifier.backbone(ids, return_logits=False).last_hidden[0]  # (L, D)
            expected = classifier.classifier(states.amax(0)).double().numpy()
            np.testing.assert_allclose(together[i], expected, rtol=1e-5, atol=1e-6)
            mean_pooled = classifier.classifier(states.mean(0)).double().numpy()
            assert not np.allclose(together[i], mean_pooled, atol=1e-3)


def test_a_finetune_is_refused_on_another_model(task, tmp_path):
    model_dir, sequences, labels, folds = task
    cross_validate_finetune(model_dir, sequences, labels, folds[:1], FinetuneConfig(method="ia3", epochs=1),
                            out_dir=tmp_path / "ft")
    other = tmp_path / "other"
    torch.manual_seed(1)
    DNALM(ModelConfig(vocab_size=TOK.vocab_size, max_len=40, n_layers=1, d_model=32, n_heads=2, d_ff=64,
                      extra={"tokenizer": {"k": 3, "overlapping": False}})).save_pretrained(other)
    with pytest.raises(GenofmInputError, match=r"probes.t.predict: the model in .*other is not the one the "
                                               r"fine-tune was trained from"):
        FinetunedHead.load(tmp_path / "ft", other, where="probes.t.predict")
    with pytest.raises(GenofmInputError, match="has no finetune.json: not a fine-tune"):
        FinetunedHead.load(tmp_path, model_dir)


def test_bad_method():
    with pytest.raises(GenofmInputError, match="method must be one of none, lora, ia3, full, not .prefix."):
        FinetuneConfig(method="prefix")


def test_finetune_regression_head_learns_a_value(task, tmp_path):
    """A regression head (MSE on the standardised value): each sequence's GC fraction."""
    model_dir, _, _, _ = task
    rng = np.random.default_rng(3)
    gc = rng.uniform(0.15, 0.85, 60)
    sequences = ["".join(rng.choice(list("ACGT"), 120, p=[(1 - g) / 2, g / 2, g / 2, (1 - g) / 2])) for g in gc]
    values = np.array([(s.count("G") + s.count("C")) / len(s) for s in sequences])
    folds = folds_of(values, np.array(["c"] * 60), ProbeConfig(objective="regression", folds=3))
    cfg = FinetuneConfig(method="full", epochs=6, lr=3e-3, batch_size=8)
    summary, predicted = cross_validate_finetune(model_dir, sequences, values, folds, cfg, out_dir=tmp_path / "reg")
    assert predicted.shape == (60,) and np.isfinite(predicted).all()
    assert summary["spearman"]["overall"] > 0.7 and len(summary["r2"]["folds"]) == 3
    meta = json.loads((tmp_path / "reg" / "finetune.json").read_text())
    assert meta["objective"] == "regression" and meta["classes"] == []
    assert meta["target"]["mean"] == pytest.approx(values.mean())
    # applied again, in the label's units (the saved target scale undone)
    applied = FinetunedHead.load(tmp_path / "reg", model_dir).predict(sequences)
    assert np.corrcoef(applied, values)[0, 1] > 0.8 and abs(applied.mean() - values.mean()) < 0.1


def test_attributions_of_a_finetune(task, tmp_path):
    """A saved fine-tune (IA3 adapters + head) explained: the target is its two-strand log-odds,
    as its variant effects read it; integrated gradients add up; GC bases raise the GC class."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genofm.attribution import Attributor, FinetuneTarget, attribute_regions
    from genofm.config import AttributionSettings

    model_dir, sequences, labels, folds = task
    cross_validate_finetune(model_dir, sequences, labels, folds, FinetuneConfig(method="ia3", epochs=3, lr=1e-2,
                                                                                batch_size=8), out_dir=tmp_path / "ft")
    head = FinetunedHead.load(tmp_path / "ft", model_dir)
    short = [s[:90] for s in sequences[:16]]  # 30 tokens: within the context
    out = Attributor(head.backbone, head.tokenizer, FinetuneTarget(head),
                     AttributionSettings(steps=32)).attribute(short)
    np.testing.assert_allclose(out["target"], head.single_output(short), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["token_sum"], out["target"] - out["baseline_target"], atol=0.02)
    contributions = (out["one_hot"] * out["hypothetical"]).sum(2)  # (n, L) of the bases present
    is_gc = out["one_hot"][..., 1:3].sum(2) > 0
    assert contributions[is_gc].mean() > contributions[~is_gc].mean() + 0.01
    with pytest.raises(GenofmInputError, match="class 'xx' is not one of the fine-tune's classes"):
        FinetuneTarget(head, "xx")
    # the same through the rule's function, from a region set and the saved directory
    regions = tmp_path / "regions.parquet"
    pq.write_table(pa.table({"chrom": ["c"] * 16, "start": [0] * 16, "end": [90] * 16, "strand": ["+"] * 16,
                             "name": [f"r{i}" for i in range(16)], "sequence": short}), regions)
    attribute_regions(model_dir, regions, tmp_path / "oh.npy", tmp_path / "hyp.npy", tmp_path / "index.parquet",
                      finetune_dir=tmp_path / "ft", settings=AttributionSettings(method="input_x_gradient"))
    index = pq.read_table(tmp_path / "index.parquet")
    np.testing.assert_allclose(index.column("target").to_numpy(), head.single_output(short), rtol=1e-4, atol=1e-5)
    assert index.schema.metadata[b"target"] == b"log-odds of class gc (fine-tune)"
