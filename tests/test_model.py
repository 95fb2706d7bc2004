"""The model module: attention paths, padding, causality, positions, save/load without pickle."""

from __future__ import annotations

import json

import pytest
import torch

from genofm.errors import GenofmInputError
from genofm.model import DNALM, ModelConfig


def tiny(**overrides) -> ModelConfig:
    base = dict(vocab_size=40, max_len=32, n_layers=2, d_model=32, n_heads=4, d_ff=64)
    return ModelConfig(**{**base, **overrides})


VARIANTS = [dict(position=p, ffn=f, causal=c) for p in ("rope", "alibi", "learned")
            for f in ("gelu", "swiglu") for c in (False, True)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_variants_forward_shapes_and_paths_agree(variant):
    torch.manual_seed(0)
    model = DNALM(tiny(**variant)).eval()
    ids = torch.randint(6, 40, (3, 20))
    ids[1, 15:] = 1  # padding
    plain = model(ids, output_hidden_states=True)
    explicit = model(ids, output_attentions=True)  # the non-SDPA path used for attention maps
    assert plain.logits.shape == (3, 20, 40)
    assert len(plain.hidden_states) == 3 and plain.hidden_states[-1].shape == (3, 20, 32)
    assert len(explicit.attentions) == 2 and explicit.attentions[0].shape == (3, 4, 20, 20)
    torch.testing.assert_close(plain.logits, explicit.logits, atol=1e-5, rtol=1e-5)
    # padded keys get no attention, so real tokens do not see the padding
    assert float(explicit.attentions[0][1, :, :, 15:].detach().abs().max()) == 0.0
    alone = model(ids[1:2, :15]).logits
    torch.testing.assert_close(plain.logits[1, :15], alone[0], atol=1e-5, rtol=1e-5)
    # no padding (and for RoPE/learned encoders no mask at all): attention maps still work
    free = model(ids[:1, :10], output_attentions=True)
    torch.testing.assert_close(free.attentions[-1].sum(-1), torch.ones(1, 4, 10), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(free.logits, model(ids[:1, :10]).logits, atol=1e-5, rtol=1e-5)


def test_causal_model_does_not_look_ahead():
    torch.manual_seed(0)
    model = DNALM(tiny(causal=True)).eval()
    ids = torch.randint(6, 40, (1, 16))
    changed = ids.clone()
    changed[0, 10:] = torch.randint(6, 40, (6,))
    torch.testing.assert_close(model(ids).logits[0, :10], model(changed).logits[0, :10])
    encoder = DNALM(tiny(causal=False)).eval()
    assert not torch.allclose(encoder(ids).logits[0, :10], encoder(changed).logits[0, :10])


def test_logits_at_selects_positions():
    model = DNALM(tiny()).eval()
    ids = torch.randint(6, 40, (2, 12))
    where = torch.zeros(2, 12, dtype=torch.bool)
    where[0, 3] = where[1, 7] = True
    full = model(ids).logits
    torch.testing.assert_close(model(ids, logits_at=where).logits, full[where])


def test_save_and_load_use_safetensors_only(tmp_path, monkeypatch):
    torch.manual_seed(1)
    model = DNALM(tiny(ffn="swiglu", position="alibi")).eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["position"] == "alibi"
    assert (tmp_path / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, JSON header

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = DNALM.from_pretrained(tmp_path).eval()
    ids = torch.randint(6, 40, (2, 10))
    assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert loaded.head.weight.data_ptr() == loaded.embed.weight.data_ptr()  # still tied


def test_bad_configs_and_inputs(tmp_path):
    with pytest.raises(GenofmInputError, match="divisible by n_heads"):
        tiny(d_model=30, n_heads=4)
    with pytest.raises(GenofmInputError, match="position must be"):
        tiny(position="sinusoid")
    with pytest.raises(GenofmInputError, match="longer than the model's max_len 32"):
        DNALM(tiny())(torch.randint(6, 40, (1, 33)))
    DNALM(tiny()).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(GenofmInputError, match="cannot load the weights"):
        DNALM.from_pretrained(tmp_path)
    other = tmp_path / "other"
    DNALM(tiny(d_model=64)).save_pretrained(other)
    config = json.loads((other / "config.json").read_text())
    config["d_model"] = 32
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(GenofmInputError, match="another model config"):
        DNALM.from_pretrained(other)
