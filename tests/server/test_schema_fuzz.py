"""Fuzz every operation of the OpenAPI document with schemathesis: no input produces a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from ettin_rerank.server import FakeScorer, ServerSettings, create_app  # noqa: E402

MAX_EXAMPLES = 30  # per operation; bounded so CI stays quick

app = create_app(FakeScorer(max_length=64), ServerSettings(max_documents=200, max_wait_ms=0.5))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_causes_a_server_error(case):
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
