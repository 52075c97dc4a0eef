"""The server recipes of docs/integrations.md: Cohere's own clients and the Cohere rerankers of
LangChain and LlamaIndex, unchanged but for `base_url`, against a real `ettin-rerank serve`
process on a loopback port (the bundled model, an API key, as a user would start it)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
cohere = pytest.importorskip("cohere", reason="the Cohere SDK is not installed")
httpx = pytest.importorskip("httpx")

from ettin_rerank.models import ENV_VAR, bundled_model_dir  # noqa: E402

from .conftest import ANSWER, DOCUMENTS, QUERY  # noqa: E402

API_KEY = "recipe-key"
MODEL = "ettin-rerank"  # the clients require a name; the server serves one model and accepts any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """`ettin-rerank serve --api-key KEY` with no model named: the bundled one."""
    if bundled_model_dir() is None:
        pytest.skip("this install carries no bundled model")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    process = subprocess.Popen(
        [
            # exact fp32, as the in-process scores it is compared with at 1e-4 (the command's default,
            # dtype auto, is bf16 on a CPU with native bf16 kernels)
            *(sys.executable, "-m", "ettin_rerank", "serve", "--dtype", "float32"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        env={**environment, "ETTIN_RERANK_API_KEY": API_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{process.stdout.read()}")
            try:
                if httpx.get(f"{url}/ready", headers=headers, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def in_process_scores(bundled_reranker) -> dict[int, float]:
    """What the in-process integrations give each document: the server must agree (one engine,
    one choice of activation)."""

    results = bundled_reranker.rank(QUERY, DOCUMENTS, activation=bundled_reranker.probability_activation)
    return {r["index"]: r["score"] for r in results}


def test_cohere_client_v2(server_url, in_process_scores):
    client = cohere.ClientV2(api_key=API_KEY, base_url=server_url)
    response = client.rerank(model=MODEL, query=QUERY, documents=DOCUMENTS, top_n=2)
    assert [r.index for r in response.results][0] == ANSWER and len(response.results) == 2
    for result in response.results:
        assert result.relevance_score == pytest.approx(in_process_scores[result.index], abs=1e-4)


def test_cohere_async_client_v2(server_url):
    async def rerank():
        client = cohere.AsyncClientV2(api_key=API_KEY, base_url=server_url)
        return await client.rerank(model=MODEL, query=QUERY, documents=DOCUMENTS)

    response = asyncio.run(rerank())
    assert sorted(r.index for r in response.results) == list(range(len(DOCUMENTS)))
    assert response.results[0].index == ANSWER


def test_cohere_client_v1_with_documents(server_url, in_process_scores):
    client = cohere.Client(api_key=API_KEY, base_url=server_url)
    response = client.rerank(model=MODEL, query=QUERY, documents=DOCUMENTS, top_n=1, return_documents=True)
    (best,) = response.results
    assert best.index == ANSWER and best.document.text == DOCUMENTS[ANSWER]
    assert best.relevance_score == pytest.approx(in_process_scores[ANSWER], abs=1e-4)


def test_cohere_client_errors_are_the_sdks_own_exceptions(server_url):
    with pytest.raises(cohere.UnauthorizedError):
        cohere.ClientV2(api_key="wrong-key", base_url=server_url).rerank(
            model=MODEL, query=QUERY, documents=["d"]
        )
    client = cohere.ClientV2(api_key=API_KEY, base_url=server_url)
    with pytest.raises(cohere.UnprocessableEntityError) as raised:  # a client mistake: 422, never a 500
        client.rerank(model=MODEL, query=QUERY, documents=[])
    assert raised.value.status_code == 422 and "documents" in str(raised.value.body)


def test_langchain_cohere_rerank(server_url, in_process_scores):
    langchain_cohere = pytest.importorskip("langchain_cohere")
    from langchain_core.documents import Document

    compressor = langchain_cohere.CohereRerank(
        base_url=server_url, cohere_api_key=API_KEY, model=MODEL, top_n=2
    )
    documents = [Document(page_content=text, metadata={"source": i}) for i, text in enumerate(DOCUMENTS)]
    best = compressor.compress_documents(documents, QUERY)
    assert len(best) == 2 and best[0].metadata["source"] == ANSWER
    for document in best:
        expected = in_process_scores[document.metadata["source"]]
        assert document.metadata["relevance_score"] == pytest.approx(expected, abs=1e-4)


def test_llama_index_cohere_rerank(server_url, in_process_scores):
    cohere_rerank = pytest.importorskip("llama_index.postprocessor.cohere_rerank")
    from llama_index.core.schema import NodeWithScore, TextNode

    postprocessor = cohere_rerank.CohereRerank(api_key=API_KEY, base_url=server_url, model=MODEL, top_n=2)
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=str(i)), score=0.5) for i, text in enumerate(DOCUMENTS)
    ]
    best = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    assert len(best) == 2 and best[0].node.node_id == str(ANSWER)
    for node in best:
        assert node.score == pytest.approx(in_process_scores[int(node.node.node_id)], abs=1e-4)
