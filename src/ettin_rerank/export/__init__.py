"""Exports of a reranker for runtimes without torch.

- `onnx`: writes one self-contained ONNX graph (encoder + scoring head) with the tokenizer and a
  manifest (`ettin-rerank export MODEL --format onnx`); needs torch and the `onnx` extra.
- `onnx_scorer`: scores pairs with such an export using onnxruntime and `tokenizers` only (no torch).

Nothing here is imported at package import; each module imports what it needs.
"""
