"""Projects: creating one and changing its settings."""
from __future__ import annotations

from ..models import Project


def create_project(*, created_by=None, **settings) -> Project:
    """A new project with these settings (checked at the edge: the API's ProjectSerializer); its
    slug is made from the name."""
    return Project.objects.create(created_by=created_by, **settings)


def update_project(project: Project, **changes) -> Project:
    """Change these settings of the project (its slug stays: it is in every URL and client script)."""
    for name, value in changes.items():
        setattr(project, name, value)
    project.save()
    return project
