"""Small random Hugging Face checkpoints of each model family genofm reads, laid out as their
authors publish them (config.json, model.safetensors, the tokenizer's files), for the tests
and the families benchmark: nothing is downloaded. Weights are drawn N(0, 0.2) so that scores
differ between tokens."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

CHAR_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def opinions(model, seed: int = 0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def save_tokenizer(directory, vocab: dict[str, int], pattern: str, lowercase: bool = False, **specials) -> None:
    """A word-level tokenizer whose pre-tokenizer cuts `pattern` (one character, or k-mers)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=specials["unk_token"]))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), "isolated")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials).save_pretrained(directory)


def make_nt(directory, layers=2, hidden=32, max_positions=66, seed=0) -> Path:
    """An EsmForMaskedLM laid out as Nucleotide Transformer v2 publishes it (6-mer vocab.txt)."""
    from transformers import EsmConfig, EsmForMaskedLM

    from genofm.tokenizer import KmerTokenizer

    nt = KmerTokenizer(k=6)
    config = EsmConfig(vocab_size=nt.vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                       intermediate_size=2 * hidden, max_position_embeddings=max_positions,
                       position_embedding_type="rotary", pad_token_id=1, mask_token_id=2, token_dropout=False,
                       emb_layer_norm_before=False, layer_norm_eps=1e-12, tie_word_embeddings=False,
                       architectures=["EsmForMaskedLM"])
    opinions(EsmForMaskedLM(config), seed).save_pretrained(directory, safe_serialization=True)
    nt.save_hf_vocab(directory)
    return Path(directory)


def make_gpn(directory, hidden=32, layers=3, seed=0, architecture="ConvNet") -> Path:
    """A GPN masked LM, the original ConvNetForMaskedLM or the newer GPNForMaskedLM (convolutional
    encoder), with GPN's character tokenizer ([PAD] [MASK] [UNK] a c g t, upper case folded to
    lower)."""
    from gpn import register_auto_classes

    register_auto_classes("ss")
    from gpn.ss.model import ConvNetConfig, ConvNetForMaskedLM, GPNConfig, GPNForMaskedLM

    vocab = {"[PAD]": 0, "[MASK]": 1, "[UNK]": 2, "a": 3, "c": 4, "g": 5, "t": 6}
    save_tokenizer(directory, vocab, ".", lowercase=True, pad_token="[PAD]", mask_token="[MASK]", unk_token="[UNK]")
    if architecture == "ConvNet":
        model = ConvNetForMaskedLM(ConvNetConfig(vocab_size=len(vocab), hidden_size=hidden, n_layers=layers,
                                                 kernel_size=5, dilation_max=4, dilation_cycle=3,
                                                 architectures=["ConvNetForMaskedLM"]))
    else:
        model = GPNForMaskedLM(GPNConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                                         intermediate_size=2 * hidden, first_kernel_size=5, rest_kernel_size=3,
                                         architectures=["GPNForMaskedLM"]))
    opinions(model, seed).save_pretrained(directory, safe_serialization=True)
    return Path(directory)


def make_llama(directory, k=1, seed=0, positions=256, hidden=32, layers=2) -> Path:
    """A LlamaForCausalLM over single bases (k=1) or k-mers with single-base leftovers, <s>
    first, with vocabulary tokens genofm has no id for."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokens = CHAR_SPECIALS + list("ACGTN") + [f"<extra_{i}>" for i in range(8)]
    if k > 1:
        tokens += ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    vocab = {t: i for i, t in enumerate(tokens)}
    save_tokenizer(directory, vocab, f"[ACGT]{{{k}}}|." if k > 1 else ".", pad_token="<pad>", bos_token="<s>",
                   eos_token="</s>", unk_token="<unk>")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=positions, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                         architectures=["LlamaForCausalLM"])
    opinions(LlamaForCausalLM(config), seed).save_pretrained(directory, safe_serialization=True)
    return Path(directory)


def make_mamba(directory, seed=0) -> Path:
    """A MambaForCausalLM (a state-space model, no attention) over single bases."""
    from transformers import MambaConfig, MambaForCausalLM

    vocab = {t: i for i, t in enumerate(CHAR_SPECIALS + list("ACGTN"))}
    save_tokenizer(directory, vocab, ".", pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    config = MambaConfig(vocab_size=len(vocab), hidden_size=32, state_size=4, num_hidden_layers=2, expand=2,
                         conv_kernel=4, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                         architectures=["MambaForCausalLM"])
    opinions(MambaForCausalLM(config), seed).save_pretrained(directory, safe_serialization=True)
    return Path(directory)


def make_bert_bpe(directory, sequences: list[str], vocab_size=256, seed=0, positions=512, hidden=32,
                  layers=2) -> Path:
    """A BertForMaskedLM over BPE tokens laid out as DNABERT-2 publishes its tokenizer
    (tokenizer.json: BPE without a pre-tokenizer, [CLS] [SEP] [MASK] [PAD] [UNK]), the BPE
    trained here with Hugging Face `tokenizers` on `sequences` (e.g. the demo genome)."""
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]  # DNABERT-2's order
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.train_from_iterator(sequences, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                           initial_alphabet=list("ACGTN"), show_progress=False))
    bpe.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", bpe.token_to_id("[CLS]")), ("[SEP]", bpe.token_to_id("[SEP]"))])
    PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                            pad_token="[PAD]", mask_token="[MASK]").save_pretrained(directory)
    config = BertConfig(vocab_size=bpe.get_vocab_size(), hidden_size=hidden, intermediate_size=2 * hidden,
                        num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=positions,
                        pad_token_id=bpe.token_to_id("[PAD]"), architectures=["BertForMaskedLM"])
    opinions(BertForMaskedLM(config), seed).save_pretrained(directory, safe_serialization=True)
    return Path(directory)


def make_bert(directory, seed=0, positions=200, hidden=32, layers=2) -> Path:
    """A BertForMaskedLM over single bases, [CLS] first."""
    from transformers import BertConfig, BertForMaskedLM

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "A", "C", "G", "T"])}
    save_tokenizer(directory, vocab, ".", pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                   sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                        num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=positions,
                        architectures=["BertForMaskedLM"])
    opinions(BertForMaskedLM(config), seed).save_pretrained(directory, safe_serialization=True)
    return Path(directory)
