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


@pytest.mark.parametrize("n_tokens,window", [(17, 16), (100, 16), (300, 229), (1000, 120), (5000, 600)])
def test_a_span_as_long_as_the_overlap_lies_whole_in_one_window(n_tokens, window):
    # the reason for the overlap: an answer of up to chunk_overlap(window) tokens is never read only in parts
    windows = chunk_windows(n_tokens, window)
    span = chunk_overlap(window)
    for start in range(n_tokens - span + 1):
        assert any(a <= start and start + span <= b for a, b in windows), (start, span, windows)


def test_the_overlap_is_half_the_window_up_to_128_tokens():
    assert [chunk_overlap(w) for w in (1, 16, 229, 256, 600)] == [0, 8, 114, 128, 128]
