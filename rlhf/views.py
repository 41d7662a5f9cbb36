"""Round pages (staff): list and launch per project, the round page with live progress, charts,
log tail, artifacts and actions. Thin: every change goes through `services`."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Project
from labeling.views import staff_required
from models_app.services import deployed_policy

from . import config, evaluation, forms, services
from .models import Round


@staff_required
@require_GET
def round_list(request):
    projects = Project.objects.filter(is_archived=False).order_by("name")
    rounds = Round.objects.select_related("project", "policy_out").order_by("-updated_at")[:50]
    return render(request, "rlhf/round_list.html", {"projects": projects, "rows": services.round_rows(rounds)})


@staff_required
def project_rounds(request, slug):
    project = get_object_or_404(Project, slug=slug)
    form = forms.LaunchRoundForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            round = services.launch_round(
                project, user=request.user, algorithm=form.cleaned_data["algorithm"],
                hyperparameters=form.cleaned_data["hyperparameters"], data_filters=form.data_filters(),
                deploy_rule=form.deploy_rule(), launcher=form.cleaned_data["launcher"],
            )
        except services.RoundError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Round {round.number} launched.")
            return redirect("rlhf:detail", round_id=round.pk)
    return render(request, "rlhf/project_rounds.html", {
        "project": project, "form": form, "generate_form": forms.GenerateForm(),
        "rows": services.round_rows(project.rounds.select_related("project", "policy_in", "policy_out",
                                                                  "reward_model")),
        "policy": deployed_policy(project), "defaults": config.DEFAULTS,
        **_pair_count_context(project, form.data_filters() if form.is_bound and form.is_valid() else {}),
    }, status=400 if form.errors else 200)


def _pair_count_context(project, filters):
    """What a launch with these data filters would train on, counted by the training's own filter."""
    from . import datasets

    try:
        filters = datasets.validate_filters(project, filters)
    except services.RoundError as exc:
        return {"pair_count": "", "pair_problem": str(exc)}
    problem = ""
    try:
        datasets.check_enough_data(project, filters)
    except services.RoundError as exc:
        problem = str(exc)
    return {"pair_count": datasets.describe_breakdown(datasets.pair_breakdown(project, filters)),
            "pair_problem": problem}


@staff_required
@require_GET
def pair_count(request, slug):
    """The launch form's pair count, again for the filters being typed (htmx)."""
    project = get_object_or_404(Project, slug=slug)
    filters = {"include_ties": request.GET.get("include_ties", "") in {"on", "true", "1"}}
    if request.GET.get("min_agreement", "").strip():
        filters["min_agreement"] = request.GET["min_agreement"].strip()
    return render(request, "rlhf/_pair_count.html", _pair_count_context(project, filters))


@staff_required
@require_POST
def generate(request, slug):
    """A new labeling round: the deployed policy writes candidates for prompts it has not answered."""
    project = get_object_or_404(Project, slug=slug)
    form = forms.GenerateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a number of prompts between 1 and 10000.")
        return redirect("rlhf:project", slug=slug)
    try:
        round = services.start_labeling_round(project, count=form.cleaned_data["prompts"], user=request.user)
    except services.RoundError as exc:
        messages.error(request, str(exc))
        return redirect("rlhf:project", slug=slug)
    messages.success(request, f"Round {round.number}: generating candidates.")
    return redirect("rlhf:detail", round_id=round.pk)


def _round(round_id):
    return get_object_or_404(
        Round.objects.select_related("project", "policy_in", "policy_out", "reward_model", "started_by"), pk=round_id)


def _progress_context(round):
    status = services.round_status(round)
    return {"round": round, "status": status, "polling": status.polling}


@staff_required
@require_GET
def round_detail(request, round_id):
    round = _round(round_id)
    versions = [v for v in (round.reward_model, round.policy_out) if v is not None]
    return render(request, "rlhf/round_detail.html", {
        **_progress_context(round), "versions": versions, "metrics": services.metrics_table(round),
        "settings_used": services.settings_used(round),
        "evaluation": evaluation.report(round.metrics),
        "charts": services.charts(round),
        "lineage": round.policy_out.lineage() if round.policy_out else [],
        "transitions": round.transitions.select_related("by"),
        "deployed": deployed_policy(round.project),
    })


@staff_required
@require_GET
def round_progress(request, round_id):
    """The live part of the round page (htmx polls it while the round works)."""
    context = _progress_context(_round(round_id))
    # The header's badge and actions come along (out of band), so they follow the live state.
    response = render(request, "rlhf/_progress.html", {**context, "oob": True})
    if not context["polling"] and request.htmx:
        response["HX-Refresh"] = "true"  # the round settled: reload once for outputs and buttons
    return response


@staff_required
@require_GET
def round_metrics(request, round_id):
    round = _round(round_id)
    return JsonResponse({"series": services.metric_series(round),
                         "active": services.STATE_VIEWS[round.state].poll_s is not None})


ACTIONS = {
    "cancel": (services.cancel_round, "Round {n} cancelled."),
    "discard": (services.discard_round, "Round {n} discarded: the project keeps its current policy."),
    "retry": (services.retry_round, "Round {n} retried: it resumes where it stopped."),
    "deploy": (services.deploy_round, "Round {n}'s policy is deployed; the next candidates come from it."),
    "rollback": (services.rollback_round, "Rolled back: the policy round {n} started from is deployed again."),
}


@staff_required
@require_POST
def round_action(request, round_id, action):
    round = _round(round_id)
    if action not in ACTIONS:
        raise PermissionDenied("Unknown action.")
    act, done = ACTIONS[action]
    try:
        act(round, user=request.user)
    except services.RoundError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(n=round.number))
    return redirect("rlhf:detail", round_id=round.pk)
