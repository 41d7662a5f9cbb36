"""Who labels a project: adding and removing annotators (and reviewers)."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..errors import InvalidSubmission
from ..models import Assignment, Membership, Project
from .assignments import end_leases


def add_annotator(project: Project, user, *, role: str | None = None) -> Membership:
    """Make `user` an active member (role: annotator, the default, or reviewer)."""
    defaults = {"is_active": True}
    if role is not None:
        if role not in Membership.Role.values:
            raise InvalidSubmission("Unknown role.", {"role": f"One of {', '.join(Membership.Role.values)}."})
        defaults["role"] = role
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults=defaults)
    return membership


def remove_annotator(project: Project, user, *, now=None) -> None:
    """The user no longer labels this project: their live leases end, and those task slots go
    back to the queue (submit and skip also refuse non-members)."""
    now = now or timezone.now()
    with transaction.atomic():
        Membership.objects.filter(project=project, user=user).update(is_active=False)
        leases = Assignment.objects.select_for_update().filter(
            project=project, annotator=user, status=Assignment.Status.LEASED)
        end_leases(list(leases.order_by("id").values_list("id", "task_id")), now)
