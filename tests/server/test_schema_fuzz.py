"""Fuzz every operation of the OpenAPI document with schemathesis: no input produces a 5xx, and
every answer is one the document describes (its status code, content type and body schema)."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from ettin_rerank.server import ServerSettings, create_app  # noqa: E402

from .fake_scorer import FakeScorer  # noqa: E402

MAX_EXAMPLES = 30  # per operation; bounded so CI stays quick
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

app = create_app(FakeScorer(max_length=64), ServerSettings(max_documents=200, max_wait_ms=0.5))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_answers_match_the_schema_and_no_input_causes_a_server_error(case):
    response = case.call()
    case.validate_response(response, checks=CHECKS)
    assert response.status_code < 500, response.text
