"""Reference models built with transformers and Sentence Transformers, saved to disk.

These are the implementations our engine must reproduce. Random weights use a larger
init std than transformers' default so that scores differ clearly between pairs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ettin_rerank.family import get_size

INIT_STD = 0.2


def _modernbert_config(size: str, **extra):
    from transformers import ModernBertConfig

    s = get_size(size)
    return ModernBertConfig(
        vocab_size=50368,
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads,
        global_rope_theta=160_000.0,
        local_rope_theta=160_000.0,
        global_attn_every_n_layers=3,
        local_attention=128,
        max_position_embeddings=8192,
        initializer_range=INIT_STD,
        **extra,
    )


def build_ettin_reference(size: str, tokenizer_dir: Path, out: Path, seed: int = 0, max_length: int = 7999):
    """transformers' ModernBertModel + Sentence Transformers modules in the Ettin layout; returns (dir, CrossEncoder)."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.modules import Dense, Transformer
    from sentence_transformers.sentence_transformer.modules import LayerNorm, Pooling
    from transformers import AutoTokenizer, ModernBertModel

    torch.manual_seed(seed)
    encoder_dir = out.parent / f"{out.name}-encoder"
    ModernBertModel(_modernbert_config(size)).save_pretrained(encoder_dir)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(encoder_dir)
    hidden = get_size(size).hidden_size
    modules = [
        Transformer(str(encoder_dir)),
        Pooling(hidden, pooling_mode="cls"),
        Dense(hidden, hidden, bias=False, activation_function=torch.nn.GELU()),
        LayerNorm(hidden),
        Dense(hidden, 1, bias=True, activation_function=torch.nn.Identity(), module_output_name="scores"),
    ]
    with torch.no_grad():  # a non-trivial LayerNorm so its weights are really loaded
        modules[3].norm.weight.uniform_(0.5, 1.5)
        modules[3].norm.bias.uniform_(-0.5, 0.5)
    model = CrossEncoder(modules=modules, activation_fn=torch.nn.Identity())
    model.max_seq_length = max_length
    model.save(str(out))
    return out, CrossEncoder(str(out), activation_fn=torch.nn.Identity())


def build_modernbert_classifier(tokenizer_dir: Path, out: Path, seed: int = 0):
    from transformers import AutoTokenizer, ModernBertForSequenceClassification

    torch.manual_seed(seed)
    config = _modernbert_config("tiny", num_labels=1, classifier_pooling="cls")
    model = ModernBertForSequenceClassification(config).eval()
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.model_max_length = 7999
    tokenizer.save_pretrained(out)
    return out, model, tokenizer


def build_bert_classifier(tokenizer_dir: Path, out: Path, seed: int = 0):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
        num_labels=1,
        initializer_range=INIT_STD,
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(out)
    return out, model, tokenizer


@torch.no_grad()
def transformers_scores(model, tokenizer, pairs, max_length: int) -> torch.Tensor:
    """Score pairs one at a time with the reference transformers model (no padding involved)."""
    out = []
    for query, document in pairs:
        features = tokenizer([query], [document], truncation=True, max_length=max_length, return_tensors="pt")
        out.append(model(**features).logits.reshape(-1)[0].float())
    return torch.stack(out)


def mixed_pairs() -> list[tuple[str, str]]:
    """Lengths from a few tokens to over 600, so local windows and global layers both matter."""
    base = (
        "Ettin rerankers score a query against a document with a ModernBERT cross-encoder; "
        "local layers see a window of 128 tokens while every third layer attends globally. "
    )
    return [
        ("what is ettin?", "A giant."),
        ("short", ""),
        ("", "an empty query is still a pair"),
        ("how do sliding windows work?", base * 6),  # ~200 tokens
        ("long document retrieval", base * 25),  # ~700 tokens
        ("cross-encoder speed", (base * 3) + "unpadded batches skip pad tokens entirely."),
        (
            "a query that is a little bit longer than the others, with some numbers 1234 and ünïcödé",
            base * 12,
        ),
        ("duplicate", "A giant."),
    ]
