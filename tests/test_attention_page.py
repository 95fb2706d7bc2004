"""The interactive attention page: every layer's per-head maps equal the model's own attentions,
the page embeds exactly those weights, every layer and head is selectable, nothing is fetched
from the network, and a model without attention gets a page saying so. With node installed, the
page's script runs against a stub DOM: selectors, clip and hover read back what was embedded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pysam
import pytest
import torch

from conftest import write_fasta
from genofm.attention_page import (DEFAULT_CLIP_QUANTILE, AttentionMaps, attention_maps, attention_page,
                                   token_spans, write_attention_page)
from genofm.errors import GenofmInputError
from genofm.model import DNALM, ModelConfig
from genofm.tokenizer import CLS, KmerTokenizer
from genofm.variant_report import last_layer_attention
from genofm.variant_scoring import ScoringConfig, VariantScorer, WindowKey

K, TOKENS, START = 3, 100, 1000  # the figure region: 100 3-mers from base 1001 of chr1


def tiny_model(**overrides) -> DNALM:
    torch.manual_seed(0)
    base = dict(vocab_size=KmerTokenizer(k=K).vocab_size, max_len=128, n_layers=3, d_model=32, n_heads=4, d_ff=64,
                mixer="hybrid", n_attention_layers=2, extra={"tokenizer": {"k": K, "overlapping": False}})
    cfg = ModelConfig(**{**base, **overrides})  # a convolution block, then two attention blocks
    model = DNALM(cfg)
    with torch.no_grad():  # larger weights than the init: maps with structure, not near-uniform rows
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    seq = "".join(np.random.default_rng(3).choice(list("ACGT"), 2000))
    return write_fasta(tmp_path_factory.mktemp("genome") / "g.fa", {"chr1": seq}), seq


def region_maps(model, genome, tokenizer=None) -> tuple[AttentionMaps, VariantScorer, str]:
    path, seq = genome
    tokenizer = tokenizer or KmerTokenizer(k=K)
    region = seq[START:START + TOKENS * K]
    with pysam.FastaFile(str(path)) as fasta:
        scorer = VariantScorer(model, tokenizer, fasta, ScoringConfig(embedding=False))
        return attention_maps(scorer, region, TOKENS, WindowKey("chr1", START, START + len(region))), scorer, region


@pytest.fixture(scope="module")
def hybrid(genome):
    model = tiny_model()
    maps, scorer, region = region_maps(model, genome)
    return model, maps, scorer, region


def embedded(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="attention-data">(.*?)</script>', page, re.S)
    assert found, "the page embeds its data as JSON"
    return json.loads(found.group(1))


def test_maps_are_the_models_own_attentions(hybrid):
    model, maps, scorer, region = hybrid
    ids = torch.tensor(np.r_[CLS, KmerTokenizer(k=K).encode(region, add_special_tokens=False)[:TOKENS]])[None]
    with torch.no_grad():
        own = model(ids, output_attentions=True).attentions  # [None, (1, H, L, L), (1, H, L, L)]
    assert maps.blocks == [1, 2]  # block 0 is a convolution
    assert maps.weights.shape == (2, 4, TOKENS + 1, TOKENS + 1) and maps.weights.dtype == np.float32
    for layer, block in enumerate(maps.blocks):
        np.testing.assert_allclose(maps.weights[layer], own[block][0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-5)  # softmax rows
    assert maps.weights[-1].std(0).max() > 1e-3  # the heads differ: the mean is not any one head
    assert maps.tokens[0] == "<cls>" and "".join(maps.tokens[1:]) == region
    last, tokens = last_layer_attention(scorer, region, TOKENS, WindowKey("chr1", START, START + len(region)))
    np.testing.assert_allclose(last, maps.weights[-1].mean(0), rtol=1e-6)  # the PNG's map is the page's default
    np.testing.assert_allclose(last, own[-1][0].mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert tokens == maps.tokens


def test_fewer_tokens_than_the_region_and_the_context_cut(hybrid, genome):
    _, maps, scorer, region = hybrid
    short = attention_maps(scorer, region, 10)
    assert short.weights.shape == (2, 4, 11, 11) and len(short.tokens) == len(short.spans) == 11
    assert attention_maps(scorer, region * 2, 10_000).weights.shape[-1] == scorer.context + 1


def test_the_page_embeds_every_layer_and_head_within_rounding(hybrid):
    _, maps, _, region = hybrid
    page = attention_page(maps, "Attention over chr1:1,001-1,300 (tiny)", "chr1", START)
    data = embedded(page)
    L = TOKENS + 1
    assert data["tokens"] == maps.tokens and data["n_heads"] == 4 and data["clip_quantile"] == DEFAULT_CLIP_QUANTILE
    assert [layer["block"] for layer in data["layers"]] == [1, 2]
    assert sum(len(layer["heads"]) for layer in data["layers"]) == 2 * 4  # n_layers × H maps, each selectable
    rounding = data["unit"] / 2 + 1e-12
    for layer, weights in zip(data["layers"], maps.weights):
        for head, expected in zip(layer["heads"], weights):
            got = np.array(head).reshape(L, L) * data["unit"]
            assert np.abs(got - expected).max() <= rounding
        assert np.abs(np.array(layer["mean"]).reshape(L, L) * data["unit"] - weights.mean(0)).max() <= rounding
    # each 3-mer's bases on chr1, 1-based and inclusive
    assert data["positions"][0] is None
    assert data["positions"][1:] == [[START + 3 * i + 1, START + 3 * i + 3] for i in range(TOKENS)]
    assert "Attention over chr1:1,001-1,300 (tiny)" in page and "attention weight, query → key" in page


def test_the_page_is_self_contained(hybrid, tmp_path):
    _, maps, _, _ = hybrid
    path = tmp_path / "attention.html"
    write_attention_page(maps, path, "Attention <over> chr1 </script>", "chr1", START)
    page = path.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    for fetch in (" src=", "<link", "@import", "url(", "fetch(", "XMLHttpRequest", "<iframe"):
        assert fetch not in page, fetch
    assert page.count("</script>") == 2  # a title cannot end a script early
    assert "&lt;over&gt;" in page
    assert path.stat().st_size < 1_000_000


def test_a_model_without_attention_gets_a_page_saying_so(genome):
    maps, scorer, region = region_maps(tiny_model(mixer="conv"), genome)
    assert maps.weights is None and maps.blocks == [] and maps.head_mean() is None
    assert last_layer_attention(scorer, region, TOKENS) == (None, [])
    page = attention_page(maps, "Attention over chr1 (conv)")
    assert "has no attention layer" in page and embedded(page)["layers"] == []
    assert "https://" not in page and "http://" not in page


def test_token_spans_follow_the_tokenizer():
    seq = "ACGTNACGTAC"
    for overlapping, expected in [(False, [(0, 3), (3, 4), (4, 5), (5, 8), (8, 11)]),
                                  (True, [(0, 3), (1, 4), (4, 5), (5, 8), (6, 9), (7, 10), (8, 11)])]:
        tokenizer = KmerTokenizer(k=3, overlapping=overlapping)
        ids = tokenizer.encode(seq, add_special_tokens=False)
        spans = token_spans(tokenizer, seq, ids)
        assert [tuple(s) for s in spans.tolist()] == expected
        assert [seq[a:b] for a, b in spans] == [tokenizer.vocab[i] for i in ids]


def test_bad_page_settings_are_named(hybrid):
    _, maps, _, _ = hybrid
    with pytest.raises(GenofmInputError, match="clip_quantile"):
        attention_page(maps, "t", clip_quantile=0.2)
    broken = AttentionMaps(maps.weights, maps.tokens[:-1], maps.blocks, maps.spans)
    with pytest.raises(GenofmInputError, match="100 tokens"):
        attention_page(broken, "t")


def test_an_imported_nucleotide_transformer_gives_per_head_maps(genome, tmp_path):
    from transformers import AutoModelForMaskedLM

    from genofm.loading import load_model_and_tokenizer
    from tools.tiny_checkpoints import make_nt

    checkpoint = make_nt(tmp_path / "nt", max_positions=40)
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    path, seq = genome
    region = seq[START:START + 600]
    with pysam.FastaFile(str(path)) as fasta:
        scorer = VariantScorer(model, tokenizer, fasta, ScoringConfig(embedding=False))
        maps = attention_maps(scorer, region, 100)
    L = scorer.context + 1  # 100 6-mers do not fit: the context cuts them
    assert maps.weights.shape == (2, 4, L, L) and maps.blocks == [0, 1]
    hf = AutoModelForMaskedLM.from_pretrained(checkpoint, local_files_only=True, attn_implementation="eager").eval()
    ids = torch.tensor([tokenizer.token_to_id[t] for t in maps.tokens])[None]
    with torch.no_grad():
        own = hf(input_ids=ids, output_attentions=True).attentions
    for layer in range(2):
        np.testing.assert_allclose(maps.weights[layer], own[layer][0].numpy(), rtol=1e-5, atol=1e-6)
    assert [layer["block"] for layer in embedded(attention_page(maps, "NT", "chr1", START))["layers"]] == [0, 1]


# --- the page's script, run by node against a stub DOM ---------------------------------------------

HARNESS = r"""
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const data = page.match(/<script type="application\/json" id="attention-data">([\s\S]*?)<\/script>/)[1];
const code = page.match(/<script>([\s\S]*?)<\/script>/)[1];
function context2d() {  // drawing calls do nothing; the heatmap's pixels are kept
  const state = {measureText: t => ({width: 6 * t.length}),
                 createImageData: (w, h) => ({width: w, height: h, data: new Uint8ClampedArray(4 * w * h)}),
                 putImageData(image) { state.image = image; }};
  return new Proxy(state, {get: (o, k) => (k in o ? o[k] : () => {}), set: (o, k, v) => { o[k] = v; return true; }});
}
function element(id) {
  return {id, style: {}, options: [], listeners: {}, textContent: "",
          // a select shows its first option until one is chosen; values are strings
          get value() { return this.chosen !== undefined ? this.chosen : (this.options[0] || {value: ""}).value; },
          set value(v) { this.chosen = String(v); },
          add(option) { this.options.push(option); },
          get selectedIndex() { return this.options.findIndex(o => String(o.value) === String(this.value)); },
          getContext() { return this.context || (this.context = context2d()); },
          addEventListener(type, f) { this.listeners[type] = f; },
          getBoundingClientRect() { return {left: 0, top: 0}; }};
}
const elements = {}, created = [];
const document = {getElementById: id => elements[id] || (elements[id] = element(id)),
                  createElement: () => { const e = element("pixels"); created.push(e); return e; }};
document.getElementById("attention-data").textContent = data;
function Option(text, value) { this.text = text; this.value = String(value); }
new Function("document", "window", "Option", code)(document, {devicePixelRatio: 1}, Option);

const heat = elements.heat, tip = elements.tip;
function hover(x, y) {
  heat.listeners.mousemove({clientX: x, clientY: y});
  return tip.style.display === "block" ? tip.textContent : null;
}
function topLeftCell() {  // the first row of pixels over a cell, its first pixel, and the cell's width
  for (let y = 0; y < 100; y++) {
    for (let x = 0; x < 1000; x++) {
      if (hover(x, y)) {
        let cell = 1;
        while (!hover(x + cell, y).includes("key   #1 ")) cell++;
        return [x, y, cell];
      }
    }
  }
}
const [x0, y0, cell] = topLeftCell();
const out = {layers: elements.layer.options.map(o => o.text), layer: String(elements.layer.value),
             heads: elements.head.options.map(o => o.text), head: elements.head.value,
             clip: elements["clip-value"].textContent, pixels: Array.from(created[0].context.image.data),
             tips: [hover(x0, y0), hover(x0 + 3 * cell, y0 + 7 * cell)]};  // <cls> → <cls>, query 7 → key 3
elements.head.value = "1";  // head 2 of the first layer
elements.layer.value = "0";
elements.head.listeners.input();
out.tips.push(hover(x0 + 3 * cell, y0 + 7 * cell));
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the page's script is not run")
def test_the_pages_script_selects_clips_and_reads_weights_out(hybrid, tmp_path):
    _, maps, _, _ = hybrid
    page = tmp_path / "attention.html"
    write_attention_page(maps, page, "Attention (tiny)", "chr1", START)
    (tmp_path / "harness.js").write_text(HARNESS)
    proc = subprocess.run(["node", str(tmp_path / "harness.js"), str(page)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["layers"] == ["layer 1 of 2 (block 1)", "layer 2 of 2 (block 2)"] and out["layer"] == "1"
    assert out["heads"] == ["mean over heads", "head 1", "head 2", "head 3", "head 4"] and out["head"] == "mean"
    # the default view: the last layer's head mean, clipped at its 99% quantile, larger weights at full colour
    data = embedded(page.read_text())
    mean = np.array(data["layers"][-1]["mean"]) * data["unit"]
    clip = np.sort(mean)[int(np.ceil(DEFAULT_CLIP_QUANTILE * mean.size)) - 1]
    assert out["clip"].startswith("99.0% quantile: ")
    assert float(out["clip"].split(": ")[1]) == pytest.approx(clip, rel=1e-3)
    pixels = np.array(out["pixels"]).reshape(-1, 4)[:, :3]
    full = (pixels == [253, 231, 37]).all(1)
    assert full[mean >= clip].all() and not full[mean < 0.95 * clip].any()
    assert 0 < full.sum() <= 2 * mean.size * (1 - DEFAULT_CLIP_QUANTILE)  # clipped: about 1% of the cells
    # hover: the weights as embedded at <cls> → <cls> and query 7 → key 3 of the last layer's mean,
    # then of head 2 of layer 1
    cls, below, other_head = out["tips"]
    assert cls.startswith("query #0 <cls>  (no base)\nkey   #0 <cls>  (no base)\n")
    assert f"weight {maps.weights[-1].mean(0)[0, 0]:.6f}  (layer 2 of 2 (block 2), mean over heads)" in cls
    assert below.startswith(f"query #7 {maps.tokens[7]}  chr1:1,019-1,021\n"
                            f"key   #3 {maps.tokens[3]}  chr1:1,007-1,009\n")
    assert f"weight {maps.weights[-1].mean(0)[7, 3]:.6f}  (layer 2 of 2 (block 2), mean over heads)" in below
    assert f"weight {maps.weights[0, 1, 7, 3]:.6f}  (layer 1 of 2 (block 1), head 2)" in other_head
