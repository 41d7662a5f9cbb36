"""HTML views of the labeling app. Thin: every state change goes through `actions`, every read
through `queries`."""
import functools
import string

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import forms, preference_import, quality, queries, review
from .actions.annotations import submit_annotation
from .actions.assignments import assign_next, skip_task
from .errors import InvalidSubmission, LabelingError, NotFound
from .models import Project, ReviewItem
from .submission import text_problem
from .templatetags.labeling_tags import plain_text


def staff_required(view):
    @functools.wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can open this page.")
        return view(request, *args, **kwargs)

    return wrapped


def _member_project(request, slug) -> Project:
    project = queries.labeling_project(slug, request.user)
    queries.ensure_member(project, request.user)
    return project


@login_required
@require_GET
def home(request):
    projects = [
        {"project": project, "progress": queries.annotator_progress(project, request.user)}
        for project in queries.projects_for(request.user)
    ]
    return render(request, "labeling/home.html", {"projects": projects})


def _task_context(request, project, assignment):
    context = {
        "project": project,
        "assignment": assignment,
        "progress": queries.annotator_progress(project, request.user),
        "flags": project.flags,
        "rating_range": range(1, project.rating_scale + 1),
        "max_chars": settings.RANKLOOP_MAX_TEXT_CHARS,
    }
    if assignment is not None:
        # assign_next already loaded the candidates in the order shown.
        context["candidates"] = [
            {"candidate": candidate, "label": string.ascii_uppercase[i], "key": i + 1}
            for i, candidate in enumerate(assignment.candidates_in_order)
        ]
        context["prompt"] = assignment.task.prompt
    return context


@login_required
@require_GET
def annotate(request, slug):
    project = _member_project(request, slug)
    assignment = assign_next(project, request.user)
    if request.htmx:
        return render(request, "labeling/_task.html", _task_context(request, project, assignment))
    return render(request, "labeling/annotate.html", {
        **_task_context(request, project, assignment),
        "rejected": review.rejected_work(project, request.user),
        "may_review": review.may_review(project, request.user)})


def _project_assignment(slug, assignment_id):
    """404 unless the assignment is one of project `slug`'s. Membership, ownership and whether the
    project is archived (409) are the action's checks, under its row lock."""
    if not queries.assignment_in_project(slug, assignment_id):
        raise NotFound("No such assignment in this project.")


def _next_task(request, project, notice):
    if not request.htmx:
        return redirect("labeling:annotate", slug=project.slug)
    assignment = assign_next(project, request.user)
    context = _task_context(request, project, assignment)
    context["notice"] = notice
    return render(request, "labeling/_task.html", context)


@login_required
@require_POST
def submit(request, slug, assignment_id):
    _project_assignment(slug, assignment_id)
    annotation = submit_annotation(assignment_id, request.user, forms.submission_payload(request.POST))
    # The action loaded the project (and the membership) with the assignment.
    return _next_task(request, annotation.assignment.project, notice="Saved.")


@login_required
@require_POST
def skip(request, slug, assignment_id):
    _project_assignment(slug, assignment_id)
    assignment = skip_task(assignment_id, request.user)
    return _next_task(request, assignment.project, notice="Skipped.")


@staff_required
@require_GET
def project_detail(request, slug):
    project = get_object_or_404(Project, slug=slug)
    return render(request, "labeling/project_detail.html", _project_context(project, forms.PreferenceImportForm()))


@staff_required
@require_POST
def import_preferences(request, slug):
    """The project page's "seed from preference data" form: the API's import, then back to the page
    with what it did, or the page again with every refused line."""
    project = get_object_or_404(Project, slug=slug)
    form = forms.PreferenceImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > preference_import.settings.RANKLOOP_IMPORT_MAX_BYTES:
                raise LabelingError(
                    f"The file is {upload.size:,} bytes; the limit is "
                    f"{preference_import.settings.RANKLOOP_IMPORT_MAX_BYTES:,} bytes. Split it into smaller files.")
            report = preference_import.import_preferences(
                project, upload.read(), source=form.cleaned_data["source"], filename=upload.name,
                limit=form.cleaned_data["limit"])
        except LabelingError as exc:
            form.add_error(None, exc.message)
            form.line_errors = exc.errors if isinstance(exc.errors, list) else []
        else:
            messages.success(request, import_summary(report))
            return redirect("labeling:project", slug=project.slug)
    return render(request, "labeling/project_detail.html", _project_context(project, form), status=400)


def import_summary(report) -> str:
    duplicates = (f", {report.duplicate_lines_skipped} repeated "
                  f"line{'s' if report.duplicate_lines_skipped != 1 else ''}"
                  " skipped" if report.duplicate_lines_skipped else "")
    return (f"Imported {report.pairs_created} labelled pair{'s' if report.pairs_created != 1 else ''} as "
            f"{report.source} ({report.pairs_skipped_existing} already there{duplicates}; "
            f"{report.prompts_created} new prompts, {report.prompts_matched} matched).")


def _project_context(project, import_form):
    return {
        "project": project,
        "progress": queries.project_progress(project),
        "per_annotator": queries.annotations_per_annotator(project),
        "agreement": queries.project_agreement(project),
        "agreement_by_round": queries.agreement_by_round(project),
        "recent": _as_shown(queries.recent_annotations(project, 20)),
        "members": queries.members(project),
        "quality": quality.annotator_quality(project),
        "open_reviews": review.open_count(project),
        "excluded": queries.excluded_annotation_counts(project),
        "pair_sources": queries.pair_source_counts(project),
        "import_form": import_form,
    }


@staff_required
@require_POST
def reinstate(request, slug, user_id):
    project = get_object_or_404(Project, slug=slug)
    user = get_object_or_404(get_user_model(), pk=user_id)
    if quality.reinstate_annotator(project, user):
        messages.success(request, f"{user.get_username()} is reinstated: they get tasks again.")
    else:
        messages.info(request, f"{user.get_username()} was not paused.")
    return redirect("labeling:project", slug=project.slug)


def _as_shown(annotations):
    """Each annotation with its ranking as the annotator saw it: tiers of answer letters (A is
    the first answer on their page), each with a short plain-text preview of the answer."""
    ids = {cid for annotation in annotations for tier in annotation.ranking for cid in tier}
    texts = queries.candidate_texts(ids)
    rows = []
    for annotation in annotations:
        position = {cid: i for i, cid in enumerate(annotation.assignment.shown_order)}
        tiers = [
            [{"letter": string.ascii_uppercase[position[cid]] if cid in position else "?",
              "preview": plain_text(texts.get(cid, ""), 80)} for cid in sorted(tier, key=lambda c: position.get(c, 99))]
            for tier in annotation.ranking
        ]
        rows.append({"annotation": annotation, "tiers": tiers})
    return rows


# --- review ---------------------------------------------------------------------------------


def _letters(candidates):
    return {string.ascii_uppercase[i]: c.pk for i, c in enumerate(candidates)}


def _ranking_from_letters(text, letters):
    """'B > A = C' -> [[id of B], [id of A, id of C]]; None for an empty field."""
    text = (text or "").strip().upper()
    if not text:
        return None
    tiers = []
    for tier in text.split(">"):
        names = [name.strip() for name in tier.split("=")]
        if not all(name in letters for name in names):
            raise InvalidSubmission(
                "The final ranking is not valid.", {"ranking": f"Use the letters {', '.join(letters)}, e.g. B > A."})
        tiers.append([letters[name] for name in names])
    return tiers


def _verdicts(item, letter_of):
    annotations = review.item_annotations(item)
    return [{"annotator": a.annotator.get_username(),
             "ranking": " > ".join(" = ".join(letter_of.get(cid, "?") for cid in tier) for tier in a.ranking),
             "flags": ", ".join(f"{letter_of.get(int(cid), '?')}: {', '.join(names)}"
                                for cid, names in a.flags.items()),
             "rationale": a.rationale, "reply": a.ideal_answer} for a in annotations]


@login_required
@require_GET
def review_next(request, slug):
    project = get_object_or_404(Project, slug=slug)
    item = review.next_item(project, request.user)
    context = {"project": project, "item": item, "open_count": review.open_count(project)}
    if item is not None:
        candidates = queries.candidates_of(item.task)
        letters = _letters(candidates)
        letter_of = {pk: letter for letter, pk in letters.items()}
        context.update(candidates=[{"candidate": c, "label": letter_of[c.pk]} for c in candidates],
                       verdicts=_verdicts(item, letter_of), placeholder=" > ".join(letters))
    return render(request, "labeling/review.html", context)


@login_required
@require_POST
def review_decide(request, slug, item_id):
    project = get_object_or_404(Project, slug=slug)
    item = get_object_or_404(ReviewItem, pk=item_id, project=project)
    ranking = None
    if request.POST.get("decision") == "adjudicate":
        ranking = _ranking_from_letters(request.POST.get("ranking"), _letters(queries.candidates_of(item.task)))
    review.decide(item.pk, request.user, decision=request.POST.get("decision"), note=request.POST.get("note", ""),
                  ranking=ranking, text=request.POST.get("text"))
    messages.success(request, "Review saved.")
    return redirect("labeling:review", slug=project.slug)


@login_required
@require_POST
def preview(request, slug):
    """A demonstration's markdown as the page will show it (sanitized), for the Preview button."""
    _member_project(request, slug)
    text = request.POST.get("ideal_answer", "")
    if problem := text_problem(text):
        raise InvalidSubmission(f"The text {problem}.")
    return render(request, "labeling/_preview.html", {"text": text[: settings.RANKLOOP_MAX_TEXT_CHARS]})
