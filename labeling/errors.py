"""The labeling domain's refusals: each a RankloopError with its status and code."""
from __future__ import annotations

from rankloop.errors import RankloopError


class LabelingError(RankloopError):
    """A refusal of the labeling domain; `status` is the HTTP status the edge answers with."""

    status = 400
    code = "invalid"


class InvalidSubmission(LabelingError):
    status = 400
    code = "invalid_submission"


class NotAllowed(LabelingError):
    status = 403
    code = "not_allowed"


class NotYours(NotAllowed):
    """Someone else's assignment (the API answers 404, as for any assignment not yours)."""


class Paused(NotAllowed):
    """The annotator is paused in this project (a quality gate, or staff); the reason says why."""

    code = "paused"


class NotFound(LabelingError):
    status = 404
    code = "not_found"


class Conflict(LabelingError):
    status = 409
    code = "conflict"


class ExportError(LabelingError):
    """Bad export settings: a format, or filters on the pairs, that do not exist."""

    status = 400
    code = "invalid_export"
