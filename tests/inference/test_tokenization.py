"""The tokenizer's long-text helpers (`inference.tokenization`): the windows a long document is read in."""

from __future__ import annotations

import pytest

from ettin_rerank.inference.tokenization import chunk_overlap, chunk_windows


@pytest.mark.parametrize("n_tokens,window", [(10, 16), (16, 16), (17, 16), (100, 16), (1000, 120), (5, 1)])
def test_chunk_windows_cover_the_text_with_the_documented_overlap(n_tokens, window):
    windows = chunk_windows(n_tokens, window)
    assert windows[0][0] == 0 and windows[-1][1] == n_tokens
    assert all(stop - start == min(window, n_tokens) for start, stop in windows)
    for (a, b), (c, _) in zip(windows, windows[1:], strict=False):
        assert c <= b - chunk_overlap(window) or c == n_tokens - window  # overlap at least the documented one
        assert c > a  # always progresses
