"""Projects: creating one and changing its settings."""
from __future__ import annotations

from django.db import transaction

from ..extensions import project_fields
from ..models import Project


def _kept_elsewhere(settings: dict) -> dict:
    """The settings that an app above labeling keeps (labeling.extensions), taken out of `settings`."""
    return {name: settings.pop(name) for name in list(settings) if name in project_fields()}


def create_project(*, created_by=None, **settings) -> Project:
    """A new project with these settings (checked at the edge: the API's ProjectSerializer); its
    slug is made from the name."""
    elsewhere = _kept_elsewhere(settings)
    with transaction.atomic():
        project = Project.objects.create(created_by=created_by, **settings)
        for name, value in elsewhere.items():
            project_fields()[name].write(project, value)
    return project


def update_project(project: Project, **changes) -> Project:
    """Change these settings of the project (its slug stays: it is in every URL and client script)."""
    elsewhere = _kept_elsewhere(changes)
    with transaction.atomic():
        for name, value in changes.items():
            setattr(project, name, value)
        project.save()
        for name, value in elsewhere.items():
            project_fields()[name].write(project, value)
    return project
