"""The one error type of rankloop: a refusal a user or client caused, with the words to show
them, the HTTP status to answer with and a machine-readable code.

Every app's errors derive from `RankloopError` (as Zulip's from `JsonableError`); the edge maps
it to a response in one place: `rankloop.api_common.exception_handler` for the API and
`rankloop.middleware.RankloopErrorMiddleware` for pages. Its message is written for the client:
it never carries database or other internal error text.
"""
from __future__ import annotations


class RankloopError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, errors: dict | None = None, *, status: int | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def as_json(self) -> dict:
        body = {"detail": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class InvalidInput(RankloopError):
    status = 400
    code = "invalid"


class NotAllowed(RankloopError):
    status = 403
    code = "not_allowed"


class NotFound(RankloopError):
    status = 404
    code = "not_found"


class Conflict(RankloopError):
    """The object's state does not allow this (yet, or any more)."""

    status = 409
    code = "conflict"


class Unavailable(RankloopError):
    """A service rankloop depends on (an inference server, a worker) cannot answer now."""

    status = 503
    code = "unavailable"
