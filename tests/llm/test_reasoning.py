"""<think> stripping (whole and streamed) and reasoning_content used only when there is no content."""

from __future__ import annotations

import pytest

from ctistudio.llm.reasoning import ThinkFilter, choose_answer, split_thinking


def test_whole_think_block_is_stripped():
    answer, thoughts = split_thinking('<think>\nweigh the rubric\n</think>\n\n{"score": 7}')
    assert answer == '{"score": 7}'
    assert thoughts == "weigh the rubric"


def test_unterminated_think_leaves_no_answer():
    answer, thoughts = split_thinking("<think>still thinking when tokens ran out")
    assert answer == "" and thoughts == "still thinking when tokens ran out"


def test_only_closing_tag_template():
    answer, thoughts = split_thinking("the template opened it</think>final")
    assert (answer, thoughts) == ("final", "the template opened it")


def test_reasoning_content_only_when_no_content():
    assert choose_answer("the answer", "long thoughts that mention 9") == ("the answer", "long thoughts that mention 9")
    assert choose_answer(None, "everything came here") == ("everything came here", "everything came here")
    assert choose_answer("", None) == ("", None)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_streamed_think_is_stripped_whatever_the_chunking(size: int):
    text = "<think>I should not be shown <b>at all</b></think>\n\nThe <i>answer</i> is 42."
    think = ThinkFilter()
    out = "".join(think.feed(text[i : i + size]) for i in range(0, len(text), size)) + think.flush()
    assert out == "The <i>answer</i> is 42."


def test_stream_without_think_passes_through_even_with_angle_brackets():
    think = ThinkFilter()
    out = "".join(think.feed(piece) for piece in ["a <", "thin", "g> b"]) + think.flush()
    assert out == "a <thing> b"
