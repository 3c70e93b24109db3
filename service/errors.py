"""Domain errors: what the service raises on purpose, each naming its HTTP status and slug.

Plain exceptions with no web import, because modules the worker shares raise them too; the
RFC 9457 problem+json rendering lives in service.problem_responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class DomainError(Exception):
    """Base of the errors the service raises on purpose; each maps to one HTTP status."""

    status: int = 400
    slug: str = "bad-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, Any]:
        """Members the problem document carries besides type, title, status and detail."""
        return {}

    def headers(self) -> dict[str, str]:
        """Headers the answer carries."""
        return {}


class NotFound(DomainError):
    status, slug = 404, "not-found"


class Conflict(DomainError):
    status, slug = 409, "conflict"


class PayloadTooLarge(DomainError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(DomainError):
    status, slug = 415, "unsupported-media-type"


class InsufficientStorage(DomainError):
    """The storage quota or the disk is full: a capacity fault, not the client's error."""

    status, slug = 507, "insufficient-storage"


class Busy(DomainError):
    """The server is doing this kind of work for another request: retry after `retry_after` s."""

    status, slug = 503, "busy"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InvalidInput(DomainError):
    """A 422 naming the fields at fault, in the same shape as pydantic's own errors."""

    status, slug = 422, "validation-error"

    def __init__(self, detail: str, errors: Sequence[tuple[Sequence[str | int], str]]) -> None:
        super().__init__(detail)
        self.errors = [{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in errors]

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}
