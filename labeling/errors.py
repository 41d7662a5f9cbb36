"""The labeling domain's refusals: each a RankloopError with its status and code. The kinds
shared with the rest of the project (not allowed, not found, conflict) are those of
rankloop.errors, under LabelingError too, so either can catch them."""
from __future__ import annotations

from rankloop import errors
from rankloop.errors import RankloopError


class LabelingError(RankloopError):
    """A refusal of the labeling domain (400, `invalid`, unless a kind below says otherwise)."""


class InvalidSubmission(LabelingError):
    code = "invalid_submission"


class NotAllowed(errors.NotAllowed, LabelingError):
    pass


class NotYours(NotAllowed):
    """Someone else's assignment (the API answers 404, as for any assignment not yours)."""


class Paused(NotAllowed):
    """The annotator is paused in this project (a quality gate, or staff); the reason says why."""

    code = "paused"


class NotFound(errors.NotFound, LabelingError):
    pass


class Conflict(errors.Conflict, LabelingError):
    pass


class ExportError(LabelingError):
    """Bad export settings: a format, or filters on the pairs, that do not exist."""

    code = "invalid_export"
