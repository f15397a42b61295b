"""The one ``[n]`` citation grammar (rag.citations) the verifier and the front ends share."""

from __future__ import annotations

import pytest

from rag.citations import ESCAPED_MARKER_RE, MARKER_RE, cited_numbers, strip_markers, sub_markers


# Moved from tests/webchat/test_webchat_render.py (webchat.render.citation_markers was unused there).
@pytest.mark.parametrize(
    "text, expected",
    [("a [1] b [2]", [1, 2]), ("x [2, 1] y [1]", [2, 1]), ("none", []), ("[3][3]", [3])],
)
def test_citation_markers(text, expected):
    assert cited_numbers(text, MARKER_RE) == expected


def test_model_markers_are_lenient_and_strip_with_their_space():
    assert cited_numbers("A [ 2; 1 ]. B 【3】 [2]") == [2, 1, 3]
    assert strip_markers("Claim [1][2].") == "Claim."
    assert cited_numbers("A [ 2; 1 ].", MARKER_RE) == []  # answer markers are the strict dialect


def test_sub_markers_keeps_a_marker_when_told_to():
    def link(numbers: list[int]) -> str | None:
        return None if 2022 in numbers else "".join(f"<{n}>" for n in numbers)

    assert sub_markers("x [1, 2] in [2022]", link) == "x <1><2> in [2022]"
    assert sub_markers(r"x \[1\] [1]", link, ESCAPED_MARKER_RE) == "x <1> [1]"
