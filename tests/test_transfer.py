"""Continued pretraining (models.<m>.init_from): a model pretrained on genome A, continued on a
related genome B, starts and ends below the same model trained from scratch on B; provenance,
resume and fingerprints; sources of another network or vocabulary refused, in the package and
in the workflow's dry run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO
from genofm.errors import GenofmInputError
from genofm.hf import POINTER_NAME, checkpoint_pointer, export_to_hf
from genofm.model import DNALM, ModelConfig
from genofm.pretrain import DataSpec, TrainConfig, fingerprint, train
from genofm.tokenizer import KmerTokenizer
from genofm.transfer import (InitFrom, Source, differences, esm_settings, initialise_from, load_source,
                             model_settings, sha256_file)
from test_pretrain import ARCH, TRAIN, make_token_set, weights

# B shares three of A's five repeat units and has three of its own: what A learnt half applies
UNITS = np.random.default_rng(0).choice(list("ACGT"), (8, 12))
A_UNITS, B_UNITS = UNITS[:5], UNITS[2:8]
CONTINUED = dict(max_steps=24, eval_every=4)  # the step budget on B, evaluated every 4 steps


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these tiny models train faster so on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def genomes(tmp_path_factory):
    """Token sets of genomes A and B, and model a pretrained on A (60 steps)."""
    root = tmp_path_factory.mktemp("transfer")
    sets = {name: make_token_set(root / name, n, 600, seed, units=units) for name, n, seed, units in [
        ("a_train", 40, 1, A_UNITS), ("a_valid", 10, 2, A_UNITS), ("b_train", 40, 3, B_UNITS),
        ("b_valid", 10, 4, B_UNITS)]}
    sets["b_k2"] = make_token_set(root / "b_k2", 10, 600, 5, units=B_UNITS, k=2)
    data_a = [DataSpec("A", [sets["a_train"]], [sets["a_valid"]])]
    train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "max_steps": 60}), data_a, root / "a", root / "ckpt_a",
          provenance={"genofm_version": "test", "git_commit": "abc"})
    return {"sets": sets, "a": root / "a", "B": [DataSpec("B", [sets["b_train"]], [sets["b_valid"]])]}


def val_losses(directory) -> list[float]:
    return pd.read_csv(directory / "metrics.tsv", sep="\t")["val_loss"].dropna().tolist()


def test_continued_model_starts_and_ends_below_scratch(genomes, tmp_path):
    cfg = TrainConfig(**{**TRAIN, **CONTINUED})
    train(ModelConfig(**ARCH), cfg, genomes["B"], tmp_path / "scratch", tmp_path / "ckpt_scratch")
    summary = train(ModelConfig(**ARCH), cfg, genomes["B"], tmp_path / "continued", tmp_path / "ckpt_continued",
                    init_from=InitFrom("a", str(genomes["a"])))
    scratch, continued = val_losses(tmp_path / "scratch"), val_losses(tmp_path / "continued")
    print(f"\ntransfer (genome B, {cfg.max_steps} steps, val loss at steps {cfg.eval_every}, {2 * cfg.eval_every}, "
          f"...): from scratch {' '.join(f'{v:.3f}' for v in scratch)}; continued from a (60 steps on A) "
          f"{' '.join(f'{v:.3f}' for v in continued)}")
    assert continued[0] < scratch[0] - 0.5  # it starts lower...
    assert continued[-1] < scratch[-1] - 0.5  # ...and ends lower at the same step budget
    # provenance: the source's name, the sha256 of its weights, its own provenance
    record = summary["init_from"]
    assert record["model"] == "a" and record["sha256"] == sha256_file(genomes["a"] / "model.safetensors")
    assert record["provenance"] == {"genofm_version": "test", "git_commit": "abc"}
    assert json.loads((tmp_path / "continued" / "summary.json").read_text())["init_from"] == record
    assert DNALM.from_pretrained(tmp_path / "continued").cfg.extra["init_from"] == record
    assert "init_from" not in json.loads((tmp_path / "scratch" / "summary.json").read_text())


def test_a_resumed_run_goes_on_from_its_checkpoint_not_the_source(genomes, tmp_path, monkeypatch, caplog):
    import genofm.pretrain as pretrain

    cfg = TrainConfig(**{**TRAIN, "max_steps": 8, "checkpoint_every": 4})
    init_from = InitFrom("a", str(genomes["a"]))
    train(ModelConfig(**ARCH), cfg, genomes["B"], tmp_path / "straight", tmp_path / "ckpt_straight",
          init_from=init_from)
    real_lr_at = pretrain.lr_at

    def stop_at_step_6(step, train_cfg):
        if step == 6:
            raise KeyboardInterrupt  # as a kill after the checkpoint of step 4
        return real_lr_at(step, train_cfg)

    monkeypatch.setattr(pretrain, "lr_at", stop_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(ModelConfig(**ARCH), cfg, genomes["B"], tmp_path / "resumed", tmp_path / "ckpt", init_from=init_from)
    monkeypatch.setattr(pretrain, "lr_at", real_lr_at)
    with caplog.at_level(logging.INFO, logger="genofm.pretrain"):
        train(ModelConfig(**ARCH), cfg, genomes["B"], tmp_path / "resumed", tmp_path / "ckpt", init_from=init_from)
    assert "resumed from" in caplog.text and "(step 4)" in caplog.text and "initialised from" not in caplog.text
    assert weights(tmp_path / "resumed") == weights(tmp_path / "straight")


def test_the_fingerprint_tells_runs_from_scratch_and_continued_runs_apart(genomes, tmp_path, caplog):
    cfg = ModelConfig(vocab_size=69, max_len=32, n_layers=2, d_model=32, n_heads=2, d_ff=64)
    train_cfg, data = TrainConfig(max_steps=24, seed=7), [DataSpec("g", ["t"], ["v"])]
    # the fingerprint of this config before init_from existed: its checkpoints still resume
    assert fingerprint(cfg, train_cfg, data) == "64ea6f84a7f3cd2c577e9d43da860b3baa6eab31ae4f69066b55a1772ff49770"
    weighted = [DataSpec("g", ["t", "p"], ["v"], set_weights=[1.0, 10.0])]
    assert fingerprint(cfg, train_cfg, weighted) != fingerprint(cfg, train_cfg, [DataSpec("g", ["t", "p"], ["v"])])
    continued = fingerprint(cfg, train_cfg, data, {"model": "a", "sha256": "0" * 64})
    assert continued != fingerprint(cfg, train_cfg, data)
    assert continued != fingerprint(cfg, train_cfg, data, {"model": "a", "sha256": "1" * 64})  # a retrained a
    # a finished run from scratch is not taken for the continued one: it trains from a
    short = TrainConfig(**{**TRAIN, "max_steps": 4})
    train(ModelConfig(**ARCH), short, genomes["B"], tmp_path / "scratch", tmp_path / "ckpt")
    with caplog.at_level(logging.INFO, logger="genofm.pretrain"):
        train(ModelConfig(**ARCH), short, genomes["B"], tmp_path / "continued", tmp_path / "ckpt",
              init_from=InitFrom("a", str(genomes["a"])))
    assert "initialised from 'a'" in caplog.text and "resumed from" not in caplog.text
    assert weights(tmp_path / "continued") != weights(tmp_path / "scratch")


def test_another_network_or_vocabulary_is_refused_naming_the_keys(genomes, tmp_path):
    init_from = InitFrom("a", str(genomes["a"]))
    with pytest.raises(GenofmInputError, match=r"init_from 'a': .*d_model is 32 in 'a', 64 here; "
                                               r"d_ff is 64 in 'a', 128 here"):
        train(ModelConfig(**{**ARCH, "d_model": 64, "d_ff": 128}), TrainConfig(**TRAIN), genomes["B"],
              tmp_path / "out", tmp_path / "ckpt", init_from=init_from)
    k2 = [DataSpec("B", [genomes["sets"]["b_k2"]], [])]
    sizes = KmerTokenizer(k=3).vocab_size, KmerTokenizer(k=2).vocab_size
    with pytest.raises(GenofmInputError, match=rf"vocab_size is {sizes[0]} in 'a', {sizes[1]} here; k is 3 in 'a', "
                                               r"2 here"):
        train(ModelConfig(**{**ARCH, "vocab_size": KmerTokenizer(k=2).vocab_size}), TrainConfig(**TRAIN), k2,
              tmp_path / "out", tmp_path / "ckpt", init_from=init_from)
    with pytest.raises(GenofmInputError, match=r"objective is 'mlm' in 'a', 'clm' here"):
        train(ModelConfig(**ARCH), TrainConfig(**{**TRAIN, "objective": "clm"}), genomes["B"], tmp_path / "out",
              tmp_path / "ckpt", init_from=init_from)
    with pytest.raises(GenofmInputError, match=r"init_from 'b': .*nowhere/model.safetensors does not exist"):
        train(ModelConfig(**ARCH), TrainConfig(**TRAIN), genomes["B"], tmp_path / "out", tmp_path / "ckpt",
              init_from=InitFrom("b", str(tmp_path / "nowhere")))
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()  # nothing half-written


def test_what_may_differ():
    tokenizer = {"k": 3, "overlapping": False}

    def settings(**changes):
        return model_settings(ModelConfig(**{**ARCH, **changes}), tokenizer)

    assert differences(settings(), settings(dropout=0.1, max_len=64)) == []  # rope: no position weights
    assert differences(settings(position="alibi"), settings(position="alibi", max_len=64)) == []
    assert differences(settings(position="learned"), settings(position="learned", max_len=64)) == [
        ("max_len", 32, 64)]
    assert differences(settings(), settings(aligned_species=["s1"])) == []  # the new input starts at zero
    assert differences(settings(aligned_species=["s1"]), settings()) == [("aligned_species", ["s1"], [])]
    # settings that apply to neither model are not compared
    assert differences(settings(position="alibi", conv_kernel=5, n_attention_layers=2, rope_base=500.0),
                       settings(position="alibi")) == []
    assert differences(settings(mixer="conv"), settings(mixer="conv", conv_kernel=5)) == [("conv_kernel", 9, 5)]


def test_an_alignment_aware_model_starts_as_its_single_sequence_source():
    arch = {**ARCH, "vocab_size": KmerTokenizer(k=1).vocab_size}
    torch.manual_seed(0)
    source = DNALM(ModelConfig(**arch)).eval()
    model = DNALM(ModelConfig(**arch, aligned_species=["s1", "s2"])).eval()
    initialise_from(model, Source(source, {"k": 1, "overlapping": False}, {"model": "a"}))
    ids = torch.randint(5, arch["vocab_size"], (2, 16))
    aligned = torch.randint(0, 7, (2, 16, 2), dtype=torch.uint8)
    torch.testing.assert_close(model(ids, aligned=aligned).logits, source(ids).logits)


def test_an_imported_esm_checkpoint_maps_onto_genofm_weights(genomes, tmp_path):
    from transformers import EsmConfig, EsmForMaskedLM

    from tools.tiny_checkpoints import make_nt, opinions

    # a genofm export read back: the same weights
    exported = DNALM.from_pretrained(genomes["a"]).eval()
    export_to_hf(exported, KmerTokenizer(k=3), tmp_path / "hf")
    workflow_dir = tmp_path / "models" / "a_hf"
    workflow_dir.mkdir(parents=True)
    (workflow_dir / POINTER_NAME).write_text(json.dumps(checkpoint_pointer(tmp_path / "hf")))
    source = load_source(InitFrom("a_hf", str(workflow_dir)))
    for name, tensor in exported.state_dict().items():
        torch.testing.assert_close(source.model.state_dict()[name], tensor, msg=name)
    assert source.record["sha256"] == sha256_file(tmp_path / "hf" / "model.safetensors")
    assert source.tokenizer["k"] == 3 and source.record["huggingface"] == str(tmp_path / "hf")
    # a Nucleotide-Transformer-style checkpoint, rotary or absolute positions (logits checked on loading)
    for position in ("rotary", "absolute"):
        nt = make_nt(tmp_path / f"nt_{position}")
        if position == "absolute":  # as Nucleotide Transformer v1
            config = EsmConfig.from_pretrained(nt)
            config.position_embedding_type = "absolute"
            opinions(EsmForMaskedLM(config)).save_pretrained(nt, safe_serialization=True)
        pointer_dir = tmp_path / "models" / f"nt_{position}"
        pointer_dir.mkdir()
        (pointer_dir / POINTER_NAME).write_text(json.dumps(checkpoint_pointer(nt)))
        model = load_source(InitFrom("nt", str(pointer_dir))).model
        assert model.cfg.position == ("rope" if position == "rotary" else "learned") and not model.cfg.tie_embeddings
    with pytest.raises(GenofmInputError, match="a 'llama' checkpoint cannot be continued.*EsmForMaskedLM"):
        esm_settings({"model_type": "llama"}, "init_from 'x'")
    with pytest.raises(GenofmInputError, match="token_dropout"):
        esm_settings(json.loads((tmp_path / "hf" / "config.json").read_text()) | {"token_dropout": True}, "x")


# --- the workflow checks the config before any job -------------------------------------------

def dry_run(tmp_path, models: dict, *options: str) -> subprocess.CompletedProcess:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["models"].update(models)
    config["probes"], config["variants"] = {}, {}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "-n", *options,
                           "results/models/demo_cont/model.safetensors", "--configfile", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def continued(**changes) -> dict:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())["models"]["demo_mlm"]
    return {**config, "export_huggingface": False, "init_from": "demo_mlm", **changes}


@pytest.mark.workflow
def test_the_dry_run_trains_the_source_first(tmp_path):
    proc = dry_run(tmp_path, {"demo_cont": continued(architecture={
        **continued()["architecture"], "dropout": 0.1, "max_len": 256})}, "--forceall")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = proc.stdout.split("rule pretrain:")[1:]
    assert len(jobs) == 2 and "wildcards: model=demo_mlm" in jobs[0] and "wildcards: model=demo_cont" in jobs[1]
    assert "results/models/demo_mlm/model.safetensors" in jobs[1].split("output:")[0]  # demo_cont's input


@pytest.mark.workflow
@pytest.mark.parametrize("models, message", [
    ({"demo_cont": continued(architecture={**continued()["architecture"], "d_model": 64, "n_layers": 2})},
     "models.demo_cont.init_from: 'demo_mlm' has n_layers 4, models.demo_cont.architecture.n_layers is 2; "
     "'demo_mlm' has d_model 128, models.demo_cont.architecture.d_model is 64"),
    ({"demo_cont": continued(training={**continued()["training"], "objective": "clm"})},
     "'demo_mlm' has objective 'mlm', models.demo_cont.training.objective is 'clm'"),
    ({"demo_cont": continued(init_from="demo_typo")},
     "models.demo_cont.init_from: 'demo_typo' is not a model of models (demo_cont, demo_conv, demo_mlm)"),
    ({"demo_cont": continued(init_from="demo_mlm"), "demo_mlm": continued(init_from="demo_cont")},
     "a cycle: demo_cont -> demo_mlm -> demo_cont"),
    ({"demo_cont": continued(init_from="demo_cont")}, "models.demo_cont.init_from: a cycle: demo_cont -> demo_cont"),
    ({"demo_cont": continued(init_from="llama"), "llama": {"huggingface": "LLAMA"}},
     "a 'llama' checkpoint cannot be continued by genofm's training loop; init_from takes genofm models"),
    ({"demo_cont": continued(init_from="nt"), "nt": {"huggingface": "NT"}},
     "'nt' has n_layers 2, models.demo_cont.architecture.n_layers is 4; 'nt' has d_model 32, "),
])
def test_the_dry_run_refuses_a_bad_init_from(tmp_path, models, message):
    from tools.tiny_checkpoints import make_nt

    for model in models.values():
        if model.get("huggingface") == "LLAMA":
            (tmp_path / "llama").mkdir()
            (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
            model["huggingface"] = str(tmp_path / "llama")
        elif model.get("huggingface") == "NT":
            model["huggingface"] = str(make_nt(tmp_path / "nt"))
    proc = dry_run(tmp_path, models)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_the_rule_script_passes_init_from_on(genomes, tmp_path):
    from test_pretrain import finish, run_script

    spec = {"architecture": {**ARCH, "lm_head": "esm"}, "training": {**TRAIN, "max_steps": 4},
            "data": [{"genome": "B", "train": [genomes["sets"]["b_train"]], "valid": [genomes["sets"]["b_valid"]]}],
            "init_from": {"model": "a", "path": str(genomes["a"])}}
    out = finish(run_script(json.dumps(spec), tmp_path / "out", tmp_path / "ckpt"))
    assert "initialised from 'a'" in out
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["init_from"]["model"] == "a"
