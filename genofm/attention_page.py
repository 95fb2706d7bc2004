"""The attention of a model over a region, every layer and head, as one self-contained HTML page.

`attention_maps` runs the model once over <cls> + the first tokens of a region and keeps every
attention layer's per-head maps; `attention_page` turns them into a page that needs nothing but
a browser (no network: vanilla JavaScript, inline CSS, the weights embedded as JSON): a heatmap
of query rows × key columns with a layer and a head selector, a clip on the colour scale, and
the exact weight under the pointer.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .alignment import padded_codes
from .errors import GenofmInputError
from .tokenizer import CLS
from .variant_scoring import VariantScorer, WindowKey


@dataclass
class AttentionMaps:
    """Attention over <cls> + the first tokens of a sequence, from one forward pass."""

    weights: np.ndarray | None  # (layers, H, L, L) float32, rows query, columns key; None: no attention layer
    tokens: list[str]  # L, <cls> first
    blocks: list[int]  # the block index of each attention layer (convolution blocks have none)
    spans: np.ndarray  # (L, 2) each token's [start, end) in the sequence; <cls> covers no base: (0, 0)

    def head_mean(self, layer: int = -1) -> np.ndarray | None:
        """(L, L) attention of one layer, mean over heads; None without attention."""
        return None if self.weights is None else self.weights[layer].mean(0)


def token_spans(tokenizer, seq: str, ids: np.ndarray) -> np.ndarray:
    """(n, 2) [start, end) in seq of each body token (`ids`, the first tokens of seq)."""
    if hasattr(tokenizer, "spans_one"):  # subword tokens: the tokenizer knows their offsets
        return tokenizer.spans_one(seq, "figure region")[1][:len(ids)]
    k = tokenizer.k
    is_kmer = (ids >= tokenizer.kmer_offset) & (ids < tokenizer.single_offset) if k > 1 else np.zeros(len(ids), bool)
    spans, start = np.zeros((len(ids), 2), dtype=np.int64), 0
    for i, kmer in enumerate(is_kmer):
        spans[i] = start, start + (k if kmer else 1)
        # overlapping k-mers of one run of bases step by one base; the run's last one steps past the run's end
        # (an N token or the sequence's end follows it)
        next_is_kmer = i + 1 < len(ids) and is_kmer[i + 1]
        start += 1 if tokenizer.overlapping and kmer and next_is_kmer else spans[i, 1] - spans[i, 0]
    return spans


@torch.no_grad()
def attention_maps(scorer: VariantScorer, seq: str, max_tokens: int = 100,
                   window: WindowKey | None = None) -> AttentionMaps:
    """Every attention layer's per-head maps over <cls> + the first `max_tokens` tokens of seq.
    `window`: where seq lies on the reference (an alignment-aware model reads the aligned
    bases there)."""
    tokenizer = scorer.tokenizer
    body = tokenizer.encode(seq, add_special_tokens=False)[:min(max_tokens, scorer.context)]
    ids = torch.from_numpy(np.r_[CLS, body].astype(np.int64))[None]  # (1, L)
    extra = {}
    if scorer.species:
        if window is None:
            raise GenofmInputError("an alignment-aware model needs the window's place on the reference")
        codes = padded_codes([scorer.window_codes(window)[:body.size]], ids.shape[1])
        extra["aligned"] = torch.from_numpy(codes).to(scorer.device)
    out = scorer.model(ids.to(scorer.device), output_attentions=True, return_logits=False, **extra)
    blocks = [i for i, a in enumerate(out.attentions) if a is not None]  # convolution blocks have no map
    weights = None
    if blocks:
        weights = torch.stack([out.attentions[i][0] for i in blocks]).float().cpu().numpy()  # (layers, H, L, L)
    spans = np.r_[np.zeros((1, 2), dtype=np.int64), token_spans(tokenizer, seq, body)]
    return AttentionMaps(weights, [tokenizer.vocab[i] for i in ids[0].tolist()], blocks, spans)


# --- the page -------------------------------------------------------------------------------

DEFAULT_CLIP_QUANTILE = 0.99  # the colour scale tops out here; larger weights (the <cls> sink) show at full colour


def page_data(maps: AttentionMaps, contig: str, start: int, decimals: int = 6) -> dict:
    """What the page embeds: tokens, their reference positions (1-based, inclusive; None for
    <cls>) and each layer's head-mean and per-head maps, row-major (query × key), as integers
    in units of 10^-decimals (shorter than floats; every weight of at least 0.001 keeps 4
    significant digits at the default)."""
    if maps.weights is None:
        return {"tokens": maps.tokens, "layers": []}
    layers, heads, L, _ = maps.weights.shape
    if len(maps.tokens) != L or len(maps.spans) != L or len(maps.blocks) != layers:
        raise GenofmInputError(f"attention maps of {L} tokens and {layers} layers, but {len(maps.tokens)} tokens, "
                               f"{len(maps.spans)} spans and {len(maps.blocks)} block indices")
    scale = 10.0 ** decimals

    def as_units(a: np.ndarray) -> list[int]:
        return np.rint(a.astype(np.float64) * scale).astype(np.int64).ravel().tolist()

    return {"contig": contig, "tokens": maps.tokens,
            "positions": [None] + [[start + int(a) + 1, start + int(b)] for a, b in maps.spans[1:]],
            "unit": 10.0 ** -decimals, "decimals": decimals, "n_heads": heads,
            "layers": [{"block": block, "mean": as_units(w.mean(0)), "heads": [as_units(h) for h in w]}
                       for block, w in zip(maps.blocks, maps.weights)]}


def attention_page(maps: AttentionMaps, title: str, contig: str = "", start: int = 0,
                   clip_quantile: float = DEFAULT_CLIP_QUANTILE, decimals: int = 6) -> str:
    """The page as a string. `contig`, `start` (0-based): where the sequence lies, for the
    positions read out on hover."""
    if not 0.5 <= clip_quantile <= 1.0:
        raise GenofmInputError(f"clip_quantile must be between 0.5 and 1, not {clip_quantile}")
    if not 3 <= decimals <= 9:
        raise GenofmInputError(f"decimals must be between 3 and 9, not {decimals}")
    data = page_data(maps, contig, start, decimals) | {"clip_quantile": clip_quantile}
    # "<" escaped: no token or title can close the script element early
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    if maps.weights is None:
        body = ("<p class=\"none\">This model has no attention layer (its blocks mix tokens by convolution or "
                "another operation), so there is no attention map to show.</p>")
        script = ""
    else:
        body, script = _CONTROLS, _SCRIPT
    parts = {"TITLE": html.escape(title), "BODY": body, "DATA": payload, "SCRIPT": script}
    return re.sub("@(TITLE|BODY|DATA|SCRIPT)@", lambda m: parts[m.group(1)], _PAGE)  # one pass: no part is re-read


def write_attention_page(maps: AttentionMaps, path, title: str, contig: str = "", start: int = 0,
                         clip_quantile: float = DEFAULT_CLIP_QUANTILE) -> None:
    Path(path).write_text(attention_page(maps, title, contig, start, clip_quantile), encoding="utf-8")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@TITLE@</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.15em; margin: 0 0 0.6em 0; }
.controls { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: center; margin-bottom: 0.8em; }
.controls label { display: flex; gap: 0.4em; align-items: center; }
#clip { width: 12em; }
.plot { display: flex; gap: 1em; align-items: flex-start; }
#tip { position: fixed; pointer-events: none; background: rgba(255, 255, 255, 0.95); border: 1px solid #888;
       padding: 0.3em 0.5em; font: 12px ui-monospace, monospace; white-space: pre; display: none; }
.note { color: #555; max-width: 60em; }
.none { font-size: 1.1em; }
</style>
</head>
<body>
<h1>@TITLE@</h1>
@BODY@
<script type="application/json" id="attention-data">@DATA@</script>
<script>@SCRIPT@</script>
</body>
</html>
"""

_CONTROLS = """<div class="controls">
<label>Layer <select id="layer"></select></label>
<label>Head <select id="head"></select></label>
<label>Clip colours at the <input id="clip" type="range" min="50" max="100" step="0.1">
<span id="clip-value"></span></label>
</div>
<div class="plot"><canvas id="heat"></canvas><canvas id="bar"></canvas></div>
<div id="tip"></div>
<p class="note">Rows: the attending token (query); columns: the attended token (key); &lt;cls&gt; first.
Each row sums to 1. Weights above the clip are drawn at full colour; hover over a cell to read its weight.</p>
"""

_SCRIPT = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("attention-data").textContent);
const L = DATA.tokens.length;
const VIRIDIS = [[68, 1, 84], [72, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140],
                 [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37]];
const layerSelect = document.getElementById("layer"), headSelect = document.getElementById("head");
const clipInput = document.getElementById("clip"), clipValue = document.getElementById("clip-value");
const heat = document.getElementById("heat"), bar = document.getElementById("bar");
const tip = document.getElementById("tip");
const cell = Math.max(2, Math.floor(720 / L));
const side = cell * L;
const font = Math.min(11, Math.max(7, cell)) + "px ui-monospace, monospace";
const labelStep = Math.max(1, Math.ceil(9 / cell));  // every token's label where cells are tall enough
let weights = null, clip = 1, hover = null;

DATA.layers.forEach((layer, i) =>
  layerSelect.add(new Option(`layer ${i + 1} of ${DATA.layers.length} (block ${layer.block})`, i)));
layerSelect.value = DATA.layers.length - 1;
headSelect.add(new Option("mean over heads", "mean"));
for (let h = 0; h < DATA.n_heads; h++) headSelect.add(new Option(`head ${h + 1}`, h));
clipInput.value = 100 * DATA.clip_quantile;

function colour(t) {  // t in [0, 1] -> viridis
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return VIRIDIS[i].map((c, j) => Math.round(c + f * (VIRIDIS[i + 1][j] - c)));
}
function where(i) {
  const p = DATA.positions[i];
  return p === null ? "(no base)" : `${DATA.contig}:${p[0].toLocaleString("en-US")}` +
    (p[1] > p[0] ? `-${p[1].toLocaleString("en-US")}` : "");
}
function quantile(values, q) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
function label(i) { return `${i} ${DATA.tokens[i]}`; }

// sizes of the labelled heatmap: token labels left (query) and below (key)
const probe = heat.getContext("2d");
probe.font = font;
const labelWidth = Math.ceil(Math.max(...DATA.tokens.map((t, i) => probe.measureText(label(i)).width))) + 6;
const left = labelWidth + 18, top = 4, bottom = labelWidth + 18;
const ratio = window.devicePixelRatio || 1;
function sized(canvas, width, height) {
  canvas.width = width * ratio; canvas.height = height * ratio;
  canvas.style.width = width + "px"; canvas.style.height = height + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}
const ctx = sized(heat, left + side + 4, top + side + bottom);
const barCtx = sized(bar, 120, top + side + bottom);
const pixels = document.createElement("canvas");
pixels.width = pixels.height = L;

function update() {
  const layer = DATA.layers[+layerSelect.value], head = headSelect.value;
  const units = head === "mean" ? layer.mean : layer.heads[+head];
  weights = units.map(u => u * DATA.unit);
  const q = +clipInput.value / 100;
  clip = quantile(weights, q) || 1e-12;
  clipValue.textContent = `${(+clipInput.value).toFixed(1)}% quantile: ${clip.toPrecision(4)}`;
  const image = pixels.getContext("2d").createImageData(L, L);
  weights.forEach((w, k) => {
    const [r, g, b] = colour(w / clip);
    image.data.set([r, g, b, 255], 4 * k);
  });
  pixels.getContext("2d").putImageData(image, 0, 0);
  draw();
  drawBar();
}

function draw() {
  ctx.clearRect(0, 0, heat.width, heat.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(pixels, left, top, side, side);
  ctx.font = font; ctx.fillStyle = "#222"; ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (let i = 0; i < L; i += labelStep) ctx.fillText(label(i), left - 3, top + (i + 0.5) * cell);
  for (let j = 0; j < L; j += labelStep) {
    ctx.save(); ctx.translate(left + (j + 0.5) * cell, top + side + 3); ctx.rotate(-Math.PI / 2);
    ctx.fillText(label(j), 0, 0); ctx.restore();
  }
  ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center";
  ctx.fillText("attended token (key)", left + side / 2, top + side + bottom - 8);
  ctx.save(); ctx.translate(9, top + side / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText("attending token (query)", 0, 0); ctx.restore();
  if (hover) {  // the hovered cell's row and column
    ctx.strokeStyle = "rgba(255, 255, 255, 0.8)"; ctx.lineWidth = 1;
    ctx.strokeRect(left, top + hover.row * cell, side, cell);
    ctx.strokeRect(left + hover.col * cell, top, cell, side);
  }
}

function drawBar() {
  barCtx.clearRect(0, 0, bar.width, bar.height);
  const x = 8, w = 16;
  for (let y = 0; y < side; y++) {
    const [r, g, b] = colour(1 - y / side);
    barCtx.fillStyle = `rgb(${r},${g},${b})`;
    barCtx.fillRect(x, top + y, w, 1);
  }
  barCtx.strokeStyle = "#444"; barCtx.strokeRect(x, top, w, side);
  barCtx.fillStyle = "#222"; barCtx.font = "11px system-ui, sans-serif";
  barCtx.textAlign = "left"; barCtx.textBaseline = "middle";
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    barCtx.fillText((t === 1 ? "≥ " : "") + (t * clip).toPrecision(3), x + w + 4, top + (1 - t) * side);
  }
  barCtx.save(); barCtx.translate(x + w + 80, top + side / 2); barCtx.rotate(-Math.PI / 2);
  barCtx.textAlign = "center"; barCtx.fillText("attention weight, query → key", 0, 0); barCtx.restore();
}

heat.addEventListener("mousemove", event => {
  const box = heat.getBoundingClientRect();
  const col = Math.floor((event.clientX - box.left - left) / cell);
  const row = Math.floor((event.clientY - box.top - top) / cell);
  if (row < 0 || col < 0 || row >= L || col >= L) { heat.onmouseleave(); return; }
  hover = {row, col};
  const layerName = layerSelect.options[layerSelect.selectedIndex].text;
  const headName = headSelect.options[headSelect.selectedIndex].text;
  tip.textContent = `query #${row} ${DATA.tokens[row]}  ${where(row)}\n` +
    `key   #${col} ${DATA.tokens[col]}  ${where(col)}\n` +
    `weight ${weights[row * L + col].toFixed(DATA.decimals)}  (${layerName}, ${headName})`;
  tip.style.display = "block";
  tip.style.left = (event.clientX + 14) + "px"; tip.style.top = (event.clientY + 14) + "px";
  draw();
});
heat.onmouseleave = () => { hover = null; tip.style.display = "none"; draw(); };
for (const control of [layerSelect, headSelect, clipInput]) control.addEventListener("input", update);
update();
"""
