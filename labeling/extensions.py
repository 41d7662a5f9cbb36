"""Project settings that labeling stores for the apps above it, checked by those apps.

A project carries a few settings that only a higher app understands (rlhf's `launcher`: how a
round launches its training). labeling must not import those apps, so each registers its check
here when Django starts (its AppConfig.ready); the project serializer calls the checks.
"""
from __future__ import annotations

from collections.abc import Callable

_checks: dict[str, Callable] = {}


def register_project_setting(name: str, check: Callable) -> None:
    """`check(value)` returns the value to store, or raises a RankloopError (or ValueError)
    whose message says what is wrong."""
    _checks[name] = check


def check_project_setting(name: str, value):
    check = _checks.get(name)
    return value if check is None else check(value)
