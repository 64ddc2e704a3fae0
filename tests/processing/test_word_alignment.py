"""Word timings -> the reply token spoken at each codec frame ("pointer" speech-decoder targets)."""

import numpy as np
import pytest

from nexus_o.processing.word_alignment import WordAlignmentError, token_frame_index

RED_SQUARE = [{"word": "red", "start": 0.05, "end": 0.4}, {"word": "square", "start": 0.5, "end": 0.9}]


def test_each_word_owns_its_frames_up_to_the_next_word():
    index = token_frame_index("red square", [(0, 3), (3, 10)], frames=20, frame_rate=10, words=RED_SQUARE)
    assert index.tolist() == [0] * 5 + [1] * 15  # "square" starts at 0.5 s = frame 5


def test_a_word_of_several_tokens_shares_its_frames_by_characters():
    words = [{"word": "seven", "start": 0.0, "end": 0.4}, {"word": "star", "start": 1.0, "end": 1.3}]
    spans = [(0, 2), (2, 3), (3, 5), (5, 10)]  # "se", "v", "en", " star"
    index = token_frame_index("seven star", spans, frames=15, frame_rate=10, words=words)
    assert index.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2] + [3] * 5


def test_punctuation_joins_the_word_before_and_the_index_ends_on_the_last_token():
    spans = [(0, 3), (3, 10), (10, 11)]  # "red", " square", "."
    index = token_frame_index("red square.", spans, frames=20, frame_rate=10, words=RED_SQUARE)
    assert index[0] == 0 and index[-1] == 2
    assert (np.diff(index) >= 0).all() and set(index.tolist()) == {0, 1, 2}


def test_without_timings_frames_are_shared_by_characters():
    index = token_frame_index("red square", [(0, 3), (3, 10)], frames=20, frame_rate=10)
    assert index.tolist() == [0] * 6 + [1] * 14


def test_more_tokens_than_frames_still_ends_on_the_last_token():
    index = token_frame_index("a b c d", [(0, 1), (1, 3), (3, 5), (5, 7)], frames=2, frame_rate=10)
    assert index[-1] == 3 and (np.diff(index) >= 0).all()


def test_timings_that_do_not_fit_the_text_are_clear_errors():
    with pytest.raises(WordAlignmentError, match=r"speech.words\[1\] 'circle' is not in the reply text"):
        token_frame_index("red square", [(0, 3), (3, 10)], 20, 10,
                          [{"word": "red", "start": 0, "end": 0.3}, {"word": "circle", "start": 0.5, "end": 0.9}])
    with pytest.raises(WordAlignmentError, match="no tokens"):
        token_frame_index("", [], 20, 10)
