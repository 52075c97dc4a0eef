"""A LlamaIndex node postprocessor that reranks in-process with an Ettin `Reranker`.

    from ettin_rerank.integrations.llama_index import EttinRerank

    rerank = EttinRerank(top_n=3)  # the bundled model; or model="DIR_OR_HUB_ID", or reranker=Reranker(...)
    best = rerank.postprocess_nodes(nodes, query_str="how often should API keys be rotated?")
    best[0].score

or `index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])`.
Needs `pip install 'ettin-rerank[llamaindex]'` (llama-index-core).
"""

from __future__ import annotations

import os
from typing import Any

from . import DEFAULT_LONG_DOCUMENTS, DEFAULT_TOP_N, InProcessReranker, missing_framework

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as error:
    raise missing_framework("llamaindex", "llama-index-core", error) from error

dispatcher = get_dispatcher(__name__)


class EttinRerank(BaseNodePostprocessor):
    """Reorders nodes by a cross-encoder's relevance to the query and keeps the best `top_n`.

    Returns new `NodeWithScore` objects over the same nodes, `score` set to the relevance score;
    the inputs are left as they were. A node's text is what LlamaIndex's own rerankers score:
    `node.get_content(metadata_mode=MetadataMode.EMBED)`.
    """

    model: str = Field(description="The model in use (a directory or Hub id).")
    top_n: int | None = Field(default=DEFAULT_TOP_N, description="Nodes kept; None keeps all.")
    activation: str = Field(description="'calibrated', 'sigmoid' or 'identity' (raw logits).")
    long_documents: str = Field(
        default=DEFAULT_LONG_DOCUMENTS,
        description="'chunk' scores a node longer than the model's max length in windows (max over them); "
        "'truncate' scores its start only.",
    )
    _scorer: InProcessReranker = PrivateAttr()

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        reranker: Any = None,
        top_n: int | None = DEFAULT_TOP_N,
        activation: str | None = None,
        long_documents: str = DEFAULT_LONG_DOCUMENTS,
        **kwargs: Any,
    ):
        """`model`: a directory or Hub id; `reranker`: an already loaded `ettin_rerank.Reranker`;
        neither: $ETTIN_RERANK_MODEL, then the bundled reranker. `activation=None`: calibrated
        when the model has a calibration, else sigmoid."""
        scorer = InProcessReranker.load(model, reranker, top_n, activation, long_documents)
        super().__init__(  # type: ignore[call-arg]  # pydantic's dataclass_transform: the parent's fields only
            model=scorer.name,
            top_n=scorer.top_n,
            activation=scorer.activation,
            long_documents=scorer.long_documents,
            **kwargs,
        )
        self._scorer = scorer

    @classmethod
    def class_name(cls) -> str:
        return "EttinRerank"

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError(
                "EttinRerank needs the query: call postprocess_nodes(nodes, query_str=...) "
                "or postprocess_nodes(nodes, query_bundle=QueryBundle(...))"
            )
        if isinstance(nodes, str | bytes) or not isinstance(nodes, list | tuple):
            raise TypeError(f"nodes must be a list of NodeWithScore, got {type(nodes).__name__}")
        for position, node in enumerate(nodes):
            if not isinstance(node, NodeWithScore):
                raise TypeError(f"nodes[{position}] must be a NodeWithScore, got {type(node).__name__}")
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle, nodes=nodes, top_n=self.top_n or len(nodes), model_name=self.model
            )
        )
        texts = [node.node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: self.top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            results = self._scorer.rerank(query_bundle.query_str, texts)
            reranked = [NodeWithScore(node=nodes[r["index"]].node, score=r["score"]) for r in results]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked
