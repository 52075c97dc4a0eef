"""A LangChain document compressor that reranks in-process with an Ettin `Reranker`.

    from langchain_core.documents import Document
    from ettin_rerank.integrations.langchain import EttinRerank

    compressor = EttinRerank(top_n=3)  # the bundled model; or model="DIR_OR_HUB_ID", or reranker=Reranker(...)
    best = compressor.compress_documents(documents, "how often should API keys be rotated?")
    best[0].metadata["relevance_score"]

Use it wherever LangChain takes a `BaseDocumentCompressor` (e.g. a ContextualCompressionRetriever).
Needs `pip install 'ettin-rerank[langchain]'` (langchain-core).
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any

from . import DEFAULT_LONG_DOCUMENTS, DEFAULT_TOP_N, InProcessReranker, missing_framework

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from pydantic import ConfigDict, Field, PrivateAttr, model_validator
except ImportError as error:
    raise missing_framework("langchain", "langchain-core", error) from error


class EttinRerank(BaseDocumentCompressor):
    """Reorders documents by a cross-encoder's relevance to the query and keeps the best `top_n`.

    Each returned document is a copy of the input with `metadata["relevance_score"]` (and, when
    long documents are chunked, `metadata["n_chunks"]`, the windows scored), like
    langchain-cohere's `CohereRerank`; the inputs are left as they were.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str | None = Field(
        default=None,
        description="Model directory or Hub id; None: $ETTIN_RERANK_MODEL, then the bundled reranker. "
        "After construction, the name of the model in use.",
    )
    reranker: Any = Field(
        default=None, exclude=True, description="An already loaded ettin_rerank.Reranker, instead of model."
    )
    top_n: int | None = Field(default=DEFAULT_TOP_N, description="Documents kept; None keeps all.")
    activation: str | None = Field(
        default=None,
        description="'calibrated', 'sigmoid' or 'identity' (raw logits); None: calibrated when the model "
        "has a calibration, else sigmoid. After construction, the activation in use.",
    )
    long_documents: str = Field(
        default=DEFAULT_LONG_DOCUMENTS,
        description="'chunk' scores a document longer than the model's max length in windows (max over "
        "them); 'truncate' scores its start only.",
    )
    _scorer: InProcessReranker = PrivateAttr()

    @model_validator(mode="after")
    def _load_reranker(self) -> EttinRerank:
        # Loaded and checked here, so a wrong option fails when the compressor is built, not mid-chain.
        self._scorer = InProcessReranker.load(
            self.model, self.reranker, self.top_n, self.activation, self.long_documents
        )
        self.reranker = self._scorer.reranker
        self.model = self._scorer.name
        self.activation = self._scorer.activation
        return self

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The best `top_n` documents for `query`, best first, each with its `relevance_score`."""
        if isinstance(documents, str | bytes | Document) or not isinstance(documents, Sequence):
            raise TypeError(
                f"documents must be a list of langchain_core Document objects, got {type(documents).__name__}"
            )
        for position, document in enumerate(documents):
            if not isinstance(document, Document):
                raise TypeError(
                    f"documents[{position}] must be a langchain_core Document, got {type(document).__name__}"
                )
        texts = [document.page_content for document in documents]
        compressed = []
        for result in self._scorer.rerank(query, texts):
            original = documents[result["index"]]
            metadata = deepcopy(original.metadata)
            metadata["relevance_score"] = result["score"]
            if "n_chunks" in result:
                metadata["n_chunks"] = result["n_chunks"]
            compressed.append(original.model_copy(update={"metadata": metadata}))
        return compressed
