"""Errors the service answers with, and the one JSON shape every error body has.

Body: `{"error": message, "error_type": kind, "message": message, "field": name or null}`.
`error` + `error_type` is what TEI clients read, `message` what Cohere-style clients read,
and `field` names the offending request field (`documents[3].text`, `top_n`, `body`, ...).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A known failure with its HTTP status; raised anywhere below the routes, rendered once."""

    status_code = 400
    error_type = "invalid_request"

    def __init__(self, message: str, field: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}


class InvalidRequest(ApiError):
    status_code = 422
    error_type = "validation"


class MalformedBody(ApiError):
    status_code = 400
    error_type = "invalid_request"


class BodyTooLarge(ApiError):
    status_code = 413
    error_type = "payload_too_large"


class CannotFinishInTime(ApiError):
    """The request (or one document's chunks) needs more scoring time than the request timeout allows
    even on an idle engine: retrying cannot help, so not a 503 but a 413 naming the limit."""

    status_code = 413
    error_type = "too_much_work"


class Unauthorized(ApiError):
    status_code = 401
    error_type = "unauthorized"


class Overloaded(ApiError):
    status_code = 429
    error_type = "overloaded"


class Unavailable(ApiError):
    status_code = 503
    error_type = "unavailable"


class EngineTimeout(ApiError):
    status_code = 503
    error_type = "timeout"


class ClientDisconnected(Exception):
    """The client went away while its request waited; its queued work was dropped."""


def error_body(message: str, error_type: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": message, "error_type": error_type, "message": message, "field": field, **extra}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.message, error.error_type, error.field),
        status_code=error.status_code,
        headers=error.headers,
    )


def format_location(location: tuple[Any, ...] | list[Any]) -> str:
    """Pydantic's `("body", "documents", 2, "text")` as `documents[2].text`."""
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"
