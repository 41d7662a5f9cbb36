"""Read-only queries of the labeling app: projects a user labels, progress, agreement, the
annotations that count, pair sources (the pairs a consumer reads: labeling.pair_filters), and what
the pages and the API list. Nothing here writes; views and API views build no queries of their own."""
from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from . import quality, sql, votes
from .errors import NotAllowed, NotFound
from .models import (
    Annotation,
    Assignment,
    Candidate,
    ComparisonTask,
    Membership,
    PreferencePair,
    Project,
    Prompt,
    ReviewItem,
)

# --- projects and members -------------------------------------------------------------------


def labeling_project(slug, user) -> Project:
    """The unarchived project `slug`, for labeling: with whether `user` is an active member read in
    the same query (the next-task endpoint's first step). NotFound if there is no such project."""
    found = sql.project_with_membership(slug, user.pk)
    if found is None:
        raise NotFound("No such project.")
    project, membership_row = found
    if membership_row is not None:
        project.remember_member(user, quality.MemberState.of(project, membership_row))
    return project


def ensure_member(project: Project, user) -> None:
    if not project.has_member(user):
        raise NotAllowed("You are not an annotator of this project.")


def projects_for(user):
    """The projects a user may label: all active ones for staff, their memberships otherwise."""
    projects = Project.objects.filter(is_archived=False)
    if user.is_staff:
        return projects
    return projects.filter(memberships__user=user, memberships__is_active=True)


# --- what counts in the pairs ----------------------------------------------------------------


def counted_annotations(project: Project, **filters):
    """The annotations that count in a project's pairs: not rejected by a reviewer, and (with
    exclude_paused_labels) not by an annotator who is paused there."""
    annotations = Annotation.objects.filter(is_rejected=False, **filters)
    if project.exclude_paused_labels:
        paused = Membership.objects.filter(project=project, paused_at__isnull=False).values("user_id")
        annotations = annotations.exclude(annotator_id__in=paused)
    return annotations


def excluded_annotation_counts(project: Project) -> dict:
    """How many of the project's annotations do not count in its pairs, and why."""
    all_annotations = Annotation.objects.filter(task__project=project, task__is_gold=False)
    rejected = all_annotations.filter(is_rejected=True).count()
    paused = 0
    if project.exclude_paused_labels:
        paused_users = Membership.objects.filter(project=project, paused_at__isnull=False).values("user_id")
        paused = all_annotations.filter(is_rejected=False, annotator_id__in=paused_users).count()
    return {"rejected_by_review": rejected, "paused_annotators": paused}


def pair_sources(project: Project) -> list[str]:
    """The sources the project's pairs come from, sorted."""
    return sorted(PreferencePair.objects.filter(project=project).order_by().values_list("source", flat=True)
                  .distinct())


def pair_source_counts(project: Project) -> list[dict]:
    """[{"source", "pairs"}] for the project's pairs, by source."""
    return list(PreferencePair.objects.filter(project=project).order_by("source").values("source")
                .annotate(pairs=Count("id")))


# --- agreement and progress ---------------------------------------------------------------


def project_agreement(project: Project) -> dict:
    """Pairwise agreement (the share of annotator pairs that agree on a candidate pair) and
    Krippendorff's alpha (nominal: a better / b better / tie) over pairs with 2+ votes."""
    return votes.agreement(list(_multi_vote_pairs(project).values_list("votes_a", "votes_b", "votes_tie")))


def agreement_by_round(project: Project) -> list[dict]:
    """project_agreement per labeling round (round None: tasks from outside any round), oldest first."""
    by_round = defaultdict(list)
    for number, *counts in _multi_vote_pairs(project).values_list("round_number", "votes_a", "votes_b",
                                                                  "votes_tie"):
        by_round[number].append(tuple(counts))
    return [{"round": number, **votes.agreement(counts)}
            for number, counts in sorted(by_round.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))]


def _multi_vote_pairs(project):
    return (PreferencePair.objects.filter(project=project, is_gold=False)
            .annotate(n=F("votes_a") + F("votes_b") + F("votes_tie")).filter(n__gte=2))


def project_progress(project: Project) -> dict:
    tasks = ComparisonTask.objects.filter(project=project).aggregate(
        total=Count("id"),
        complete=Count("id", filter=Q(status=ComparisonTask.Status.COMPLETE)),
        closed=Count("id", filter=Q(status=ComparisonTask.Status.CLOSED)),
        wanted=Sum("overlap", filter=~Q(status=ComparisonTask.Status.CLOSED)),
        done=Sum("annotations_done"),
        leased=Sum("leased"),
    )
    wanted, done = tasks["wanted"] or 0, tasks["done"] or 0
    return {
        "tasks": tasks["total"], "tasks_complete": tasks["complete"], "tasks_closed": tasks["closed"],
        "annotations_wanted": wanted, "annotations_done": done, "leased": tasks["leased"] or 0,
        "annotations_left": max(wanted - done, 0),
        "percent": round(100 * done / wanted, 1) if wanted else 0.0,
    }


def annotator_progress(project: Project, annotator, *, now=None) -> dict:
    now = now or timezone.now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(task__project=project, annotator=annotator)
    left = (
        ComparisonTask.objects.filter(project=project, status=ComparisonTask.Status.OPEN)
        .exclude(assignments__annotator=annotator, assignments__status__in=["submitted", "skipped"])
        .count()
    )
    return {"done_today": mine.filter(created_at__gte=start_of_day).count(), "done_total": mine.count(), "left": left}


def annotations_per_annotator(project: Project):
    return list(
        Annotation.objects.filter(task__project=project)
        .values("annotator__username")
        .annotate(n=Count("id"), avg_ms=Sum("time_on_task_ms") / Count("id"))
        .order_by("-n")
    )



# --- what the pages and the API list -----------------------------------------------------------


def projects_visible_to(user):
    """The projects the API lists for a user: all for staff, their labeling projects otherwise."""
    if user.is_authenticated and user.is_staff:
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return projects_for(user).distinct()


def prompts():
    return Prompt.objects.select_related("project")


def candidates():
    return Candidate.objects.select_related("model_version")


def tasks():
    return ComparisonTask.objects.prefetch_related("candidates")


def annotations():
    return Annotation.objects.select_related("annotator")


def pairs():
    return PreferencePair.objects.all()


def review_items():
    return ReviewItem.objects.all()


def assignments_of(user):
    """The user's own assignments with what their page and the API show: the task's prompt and
    candidates, the annotation."""
    return (Assignment.objects.select_related("project", "task__prompt", "annotation")
            .prefetch_related("task__candidates").filter(annotator=user))


def assignment_in_project(slug, assignment_id) -> bool:
    return Assignment.objects.filter(pk=assignment_id, project__slug=slug).exists()


def recent_annotations(project: Project, limit=20) -> list[Annotation]:
    """The project's latest annotations, with who, the task's prompt and the order shown."""
    return list(
        Annotation.objects.filter(task__project=project)
        .select_related("annotator", "task__prompt", "assignment")
        .order_by("-created_at")[:limit]
    )


def members(project: Project):
    """The project's memberships (active first), each with the member's annotations in it."""
    return (
        project.memberships.select_related("user")
        .annotate(annotations=Count("user__annotations", filter=Q(user__annotations__task__project=project)))
        .order_by("-is_active", "user__username")
    )


def candidate_texts(ids) -> dict:
    """{candidate id: text} for these ids."""
    return dict(Candidate.objects.filter(pk__in=ids).values_list("id", "text"))


def candidates_of(task: ComparisonTask) -> list[Candidate]:
    """The task's candidates in id order (the letters A, B, C... of the review page)."""
    return list(task.candidates.order_by("id"))
