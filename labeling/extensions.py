"""Project settings that only the apps above labeling understand, registered by those apps.

A project carries a few settings that only a higher app understands: rlhf's `launcher` (how a
round launches its training; labeling stores it, rlhf checks it) and models_app's `judge` (kept in
models_app's own table). labeling must not import those apps, so each registers its check, or
its field, here when Django starts (its AppConfig.ready); the project serializer and the project
actions call them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_checks: dict[str, Callable] = {}


def register_project_setting(name: str, check: Callable) -> None:
    """`check(value)` returns the value to store, or raises a RankloopError (or ValueError)
    whose message says what is wrong."""
    _checks[name] = check


def check_project_setting(name: str, value):
    check = _checks.get(name)
    return value if check is None else check(value)


@dataclass(frozen=True)
class ProjectField:
    """A project setting that an app above labeling keeps in its own tables (models_app's judge):
    the project API takes it (`field`: a DRF field, its checks included), shows it (`read`) and
    changes it (`write(project, value)`, that app's action, within the project's own update).
    `related`: the relation from the project to that table, joined when the API lists projects
    (so that `read` costs no query per project)."""

    field: Callable
    read: Callable
    write: Callable
    related: str = ""


_fields: dict[str, ProjectField] = {}


def register_project_field(name: str, *, field: Callable, read: Callable, write: Callable, related: str = "") -> None:
    _fields[name] = ProjectField(field, read, write, related)


def project_fields() -> dict[str, ProjectField]:
    return dict(_fields)


def project_field_relations() -> list[str]:
    return [f.related for f in _fields.values() if f.related]
