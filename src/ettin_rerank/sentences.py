"""Sentences and sentence windows of a text: one splitter for training data, teachers and benchmarks.

Punctuated text is split after `.`, `!` or `?` followed by whitespace; text without sentence
punctuation (Vaswani's abstracts) is cut into windows of a fixed number of words instead, so every
corpus yields units of a readable size.
"""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\S+")


def sentences_of(text: str, min_words: int, window_words: int) -> list[str]:
    """The sentences of `text` with at least `min_words` words; unpunctuated text (Vaswani) is cut
    into windows of `window_words` words instead."""
    sentences = [s for s in SENTENCE_END.split(text) if len(WORD.findall(s)) >= min_words]
    if len(sentences) <= 1:
        words = WORD.findall(text)
        sentences = [" ".join(words[i : i + window_words]) for i in range(0, len(words), window_words)]
        sentences = [s for s in sentences if len(s.split()) >= min_words]
    return sentences


def sentence_windows(text: str, sentences: int = 3, window_words: int = 30) -> list[str]:
    """Every run of `sentences` consecutive sentences of `text` (stride one sentence); empty when the
    text has no more than `sentences` sentences, since the whole text is then its only window."""
    units = sentences_of(text, min_words=1, window_words=window_words)
    if len(units) <= sentences:
        return []
    return [" ".join(units[i : i + sentences]) for i in range(len(units) - sentences + 1)]
