"""The one sentence splitter and its sliding windows."""

from ettin_rerank.sentences import sentence_windows, sentences_of


def test_windows_slide_one_sentence_at_a_time():
    text = "One is here. Two is here. Three is here! Four is here? Five is here."
    assert sentence_windows(text, 3) == [
        "One is here. Two is here. Three is here!",
        "Two is here. Three is here! Four is here?",
        "Three is here! Four is here? Five is here.",
    ]


def test_a_text_of_at_most_one_window_has_none_of_its_own():
    assert sentence_windows("One is here. Two is here. Three is here.", 3) == []
    assert sentence_windows("", 3) == []


def test_unpunctuated_text_is_cut_into_word_windows():
    text = " ".join(f"w{i}" for i in range(95))
    assert [len(s.split()) for s in sentences_of(text, min_words=1, window_words=30)] == [30, 30, 30, 5]
    assert len(sentence_windows(text, 3, window_words=30)) == 2
