"""`ettin_rerank.integrations.llama_index.EttinRerank` against the real llama-index-core."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("llama_index.core", reason="the llamaindex extra is not installed")

from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode  # noqa: E402

from ettin_rerank.integrations.llama_index import EttinRerank  # noqa: E402
from ettin_rerank.models import ENV_VAR, bundled_model_dir  # noqa: E402

from .conftest import (  # noqa: E402
    ANSWER,
    DOCUMENTS,
    FILLER,
    LONG_ANSWER,
    LONG_DOCUMENTS,
    QUERY,
    TEST_CALIBRATION,
)


def as_nodes(texts: list[str]) -> list[NodeWithScore]:
    """Retrieved nodes as a vector search would hand them over: a first-stage score on each."""
    return [
        NodeWithScore(node=TextNode(text=text, id_=f"node-{i}"), score=0.5) for i, text in enumerate(texts)
    ]


def test_the_bundled_model_is_the_default_and_ranks_the_answer_first(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    postprocessor = EttinRerank()
    assert isinstance(postprocessor, BaseNodePostprocessor)
    assert postprocessor.model == str(bundled_model_dir()) and postprocessor.top_n == 3
    best = postprocessor.postprocess_nodes(as_nodes(DOCUMENTS), query_str=QUERY)
    assert len(best) == 3
    assert best[0].node.node_id == f"node-{ANSWER}"
    assert best[0].node.get_content() == DOCUMENTS[ANSWER]


def test_scores_are_the_rerankers_and_inputs_are_untouched(bundled_reranker):
    postprocessor = EttinRerank(reranker=bundled_reranker, top_n=None)
    assert postprocessor.activation == bundled_reranker.probability_activation
    nodes = as_nodes(DOCUMENTS)
    best = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    expected = bundled_reranker.rank(
        QUERY, DOCUMENTS, activation=postprocessor.activation, long_documents="chunk"
    )
    assert [n.node.node_id for n in best] == [f"node-{r['index']}" for r in expected]
    assert [n.score for n in best] == [r["score"] for r in expected]
    assert all(n.score == 0.5 for n in nodes)  # new NodeWithScore objects were returned


@pytest.mark.parametrize("top_n", [1, 2, 4, 10, None])
def test_top_n(bundled_reranker, top_n):
    best = EttinRerank(reranker=bundled_reranker, top_n=top_n).postprocess_nodes(
        as_nodes(DOCUMENTS), query_str=QUERY
    )
    assert len(best) == min(top_n or len(DOCUMENTS), len(DOCUMENTS))
    assert best[0].node.node_id == f"node-{ANSWER}"


def test_a_long_node_is_chunked_and_its_late_answer_found(bundled_reranker):
    assert bundled_reranker.tokenizer.count_tokens([FILLER])[0] > bundled_reranker.max_length
    nodes = as_nodes(LONG_DOCUMENTS)
    best = EttinRerank(reranker=bundled_reranker, top_n=1).postprocess_nodes(nodes, query_str=QUERY)
    assert best[0].node.node_id == f"node-{LONG_ANSWER}"
    # the control: cut to the model's max length, the answer is not seen and the node loses
    truncated = EttinRerank(reranker=bundled_reranker, top_n=1, long_documents="truncate")
    assert truncated.postprocess_nodes(nodes, query_str=QUERY)[0].node.node_id != f"node-{LONG_ANSWER}"


def test_an_empty_list_gives_an_empty_list(bundled_reranker):
    assert EttinRerank(reranker=bundled_reranker).postprocess_nodes([], query_str=QUERY) == []


def test_async_postprocessing_matches(bundled_reranker):
    postprocessor = EttinRerank(reranker=bundled_reranker, top_n=2)
    nodes = as_nodes(DOCUMENTS)
    together = asyncio.run(postprocessor.apostprocess_nodes(nodes, query_str=QUERY))
    alone = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    assert [(n.node.node_id, n.score) for n in together] == [(n.node.node_id, n.score) for n in alone]


def test_activation_defaults_to_the_calibration_when_the_model_has_one(
    tiny_reranker_dir, calibrated_tiny_dir
):
    assert EttinRerank(str(tiny_reranker_dir)).activation == "sigmoid"
    calibrated = EttinRerank(str(calibrated_tiny_dir), top_n=None)
    assert calibrated.activation == "calibrated"
    raw = EttinRerank(str(calibrated_tiny_dir), top_n=None, activation="identity")
    logits = {n.node.node_id: n.score for n in raw.postprocess_nodes(as_nodes(DOCUMENTS), query_str=QUERY)}
    for node in calibrated.postprocess_nodes(as_nodes(DOCUMENTS), query_str=QUERY):
        expected = TEST_CALIBRATION.probabilities(np.array([np.float32(logits[node.node.node_id])]))[0]
        assert node.score == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"top_n": 0}, ValueError, "top_n must be a positive integer"),
        ({"top_n": 2.5}, ValueError, "top_n must be a positive integer"),
        ({"activation": "softmax"}, ValueError, "activation must be"),
        ({"long_documents": "split"}, ValueError, "long_documents must be one of"),
        ({"reranker": "cross-encoder/ettin-reranker-17m-v1"}, TypeError, "reranker must be an ettin_rerank"),
    ],
)
def test_bad_options_fail_at_construction(options, error, message, bundled_reranker):
    options = {"reranker": bundled_reranker, **options}
    with pytest.raises(error, match=message):
        EttinRerank(**options)


def test_wrong_inputs_give_clear_errors(bundled_reranker):
    postprocessor = EttinRerank(reranker=bundled_reranker)
    with pytest.raises(TypeError, match=r"nodes\[1\] must be a NodeWithScore, got TextNode"):
        postprocessor.postprocess_nodes([as_nodes(["a"])[0], TextNode(text="b")], query_str=QUERY)
    with pytest.raises(TypeError, match="nodes must be a list of NodeWithScore, got str"):
        postprocessor.postprocess_nodes("a single string", query_str=QUERY)
    with pytest.raises(ValueError, match="needs the query"):
        postprocessor.postprocess_nodes(as_nodes(DOCUMENTS))
