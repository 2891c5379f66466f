"""Tiny random-weight models of every supported HF family, built from a config (no downloads)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from layerscope.engine.model import Model
from layerscope.models.hf import HFLensModel

CORPUS = (
    "The capital of France is Paris. The capital of Italy is Rome. "
    "Once upon a time there was a small model that learned to read. "
    "1 2 3 4 5 6 7 8 9 10. Hello world! How are you today? I am fine, thank you."
) * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
VOCAB = 320
FAMILIES = ("llama", "qwen2", "gemma2", "gemma3_text", "gpt2", "gpt_neox")


@lru_cache(maxsize=1)
def tiny_tokenizer():
    """A byte-level BPE tokenizer trained on a few sentences, with chat tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|endoftext|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_config(family: str):
    """A 2-block config of ``family`` with a vocabulary matching the tiny tokenizer."""
    import transformers as tf

    vocab = len(tiny_tokenizer())
    common = {"vocab_size": vocab}
    if family == "llama":
        return tf.LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            tie_word_embeddings=False,
            **common,
        )
    if family == "qwen2":
        return tf.Qwen2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            **common,
        )
    if family == "gemma2":
        return tf.Gemma2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=128,
            final_logit_softcapping=5.0,
            attn_logit_softcapping=20.0,
            sliding_window=8,
            **common,
        )
    if family == "gemma3_text":
        return tf.Gemma3TextConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            query_pre_attn_scalar=16,
            max_position_embeddings=128,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"],
            **common,
        )
    if family == "gpt2":
        return tf.GPT2Config(
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=128,
            bos_token_id=0,
            eos_token_id=2,
            **common,
        )
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
            rotary_pct=0.5,
            bos_token_id=0,
            eos_token_id=2,
            **common,
        )
    raise ValueError(family)


def tiny_hf_model(family: str, seed: int = 0):
    """A random-weight ``*ForCausalLM`` of ``family`` (eager attention, fp32, eval mode)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = tiny_config(family)
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    with torch.no_grad():  # random init is small; widen it so layers disagree visibly
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2)
    return model.eval()


def tiny_model(family: str = "llama", seed: int = 0) -> Model:
    """A tiny model of ``family`` behind layerscope's interface, as ``layerscope.load`` gives."""
    return Model(
        HFLensModel.from_pretrained_model(
            tiny_hf_model(family, seed), tiny_tokenizer(), name=f"tiny-{family}"
        )
    )


def save_tiny(family: str, path: Path) -> Path:
    """Save a tiny model of ``family`` as a local HF directory."""
    tiny_hf_model(family).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path
