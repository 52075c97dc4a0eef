"""Inference: tokenization, batching and the `Reranker`."""
