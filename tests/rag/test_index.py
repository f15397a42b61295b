"""The read path's copy of a post: its sentences, as evidence sees them."""

from __future__ import annotations

from rag.index import PostText
from rag.types import Chunk

# alexos-kubecon-barcelona-2019-service-meshes (shared corpus)
LINES = (
    "In summary, I was left with the distinct impression that the GKE Addon was not the way to go. Why? Because "
    "it sounds like Istio 1.2 is going to bring with it a lovely Operator.\n\n"
    "His view? Service Meshes are too complicated. Kubernetes is hard enough, we want simple.\n\n"
    "So that's metrics. What about logs are we keeping them?\n"
)


def test_a_short_question_is_one_line_with_the_sentence_that_answers_it():
    post = PostText([Chunk(chunk_id="c::0", doc_id="alexos", text=LINES, start=0, end=len(LINES))])
    texts = [s.text for s in post.sentences()]
    assert "Why? Because it sounds like Istio 1.2 is going to bring with it a lovely Operator." in texts
    assert "His view? Service Meshes are too complicated." in texts
    assert "What about logs are we keeping them?" in texts  # a question of its own length stands alone
    for s in post.sentences():
        assert LINES[s.start : s.end] == s.text
