"""genofm's DNALM and a Hugging Face ESM model (Nucleotide Transformer v2's architecture) of the
same size, for the benchmarks: same layers, width, heads, feed-forward, vocabulary, RoPE."""

from __future__ import annotations

import torch

from genofm.model import DNALM, ModelConfig
from genofm.tokenizer import MASK, PAD


def add_model_arguments(parser, d_model: int = 256, d_ff: int = 1024, layers: int = 4, heads: int = 4,
                        threads: int = 2) -> None:
    """The model-shape and thread options every benchmark takes (--layers --d-model --heads --d-ff --threads)."""
    parser.add_argument("--layers", type=int, default=layers)
    parser.add_argument("--d-model", type=int, default=d_model)
    parser.add_argument("--heads", type=int, default=heads)
    parser.add_argument("--d-ff", type=int, default=d_ff)
    parser.add_argument("--threads", type=int, default=threads)


def same_size_models(esm_class, vocab: int, layers: int, d_model: int, heads: int, d_ff: int, max_len: int):
    """(DNALM, esm_class(EsmConfig)) with the same shape; ESM ties its output embedding to the
    input one as genofm does (EsmConfig's default)."""
    from transformers import EsmConfig

    torch.manual_seed(0)
    ours = DNALM(ModelConfig(vocab_size=vocab, max_len=max_len, n_layers=layers, d_model=d_model, n_heads=heads,
                             d_ff=d_ff, position="rope", ffn="gelu"))
    esm_cfg = EsmConfig(vocab_size=vocab, hidden_size=d_model, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=d_ff, max_position_embeddings=max_len + 2, position_embedding_type="rotary",
                        pad_token_id=PAD, mask_token_id=MASK, token_dropout=False, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, emb_layer_norm_before=False, layer_norm_eps=1e-5,
                        tie_word_embeddings=True)
    return ours, esm_class(esm_cfg)
