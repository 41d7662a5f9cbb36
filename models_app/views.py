"""HTML pages of the model registry (staff only). Thin: forms validate, services act."""
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling.models import Candidate, Project
from labeling.views import staff_required

from . import services
from .forms import DeployForm, GenerationSettingsForm, PlaygroundForm
from .models import Deployment, GenerationJob, ModelVersion


@staff_required
def version_list(request):
    versions = ModelVersion.objects.select_related("parent", "project").annotate(
        n_candidates=Count("candidates", distinct=True), n_live=Count("deployments", distinct=True)
    )
    kind = request.GET.get("kind")
    if kind in ModelVersion.Kind.values:
        versions = versions.filter(kind=kind)
    projects = Project.objects.filter(is_archived=False)
    deployed = {d.project_id: d for d in Deployment.objects.filter(is_active=True).select_related("model_version")}
    rows = [(p, deployed.get(p.pk)) for p in projects]
    return render(request, "models_app/version_list.html", {"versions": versions, "kind": kind, "projects": rows})


@staff_required
def version_detail(request, pk):
    version = get_object_or_404(ModelVersion.objects.select_related("parent", "project"), pk=pk)
    return render(request, "models_app/version_detail.html", {
        "version": version,
        "lineage": version.lineage(),
        "children": version.children.all(),
        "deployments": version.deployments.select_related("project", "deployed_by")[:50],
        "candidates": version.candidates.select_related("prompt")[:10],
        "n_candidates": version.candidates.count(),
        "path": services.loading.artifact_path(version),
    })


@staff_required
def candidate_lineage(request, pk):
    candidate = get_object_or_404(Candidate.objects.select_related("prompt__project", "model_version"), pk=pk)
    lineage = candidate.model_version.lineage() if candidate.model_version else []
    return render(request, "models_app/candidate_lineage.html", {"candidate": candidate, "lineage": lineage})


def _jobs_context(project):
    jobs = list(GenerationJob.objects.filter(project=project).select_related("model_version")[:10])
    return {
        "project": project, "jobs": jobs, "polling": any(not job.is_finished for job in jobs),
        "written": services.written_by_models(project),
    }


def _project_context(project, **extra):
    return {
        **_jobs_context(project),
        "deployed": services.deployed_policy(project),
        "history": Deployment.objects.filter(project=project).select_related("model_version", "deployed_by")[:50],
        "deploy_form": DeployForm(),
        "settings_form": GenerationSettingsForm.for_project(project),
        **extra,
    }


@staff_required
def project_models(request, slug):
    project = get_object_or_404(Project, slug=slug)
    return render(request, "models_app/project.html", _project_context(project))


@staff_required
@require_POST
def project_settings(request, slug):
    project = get_object_or_404(Project, slug=slug)
    form = GenerationSettingsForm.for_project(project, data=request.POST)
    if not form.is_valid():
        return render(request, "models_app/project.html", _project_context(project, settings_form=form), status=400)
    services.update_generation_settings(project, user=request.user, **form.settings_kwargs())
    messages.success(request, "Generation settings saved.")
    return redirect("models_app:project", slug=project.slug)


@staff_required
@require_POST
def project_deploy(request, slug):
    project = get_object_or_404(Project, slug=slug)
    form = DeployForm(request.POST)
    if form.is_valid():
        try:
            services.deploy(project, form.cleaned_data["version"], user=request.user, note=form.cleaned_data["note"])
            messages.success(request, f"{form.cleaned_data['version']} now serves {project}.")
        except services.ModelRegistryError as error:
            messages.error(request, str(error))
    else:
        messages.error(request, "Pick a ready policy version to deploy.")
    return redirect("models_app:project", slug=project.slug)


@staff_required
@require_POST
def project_rollback(request, slug):
    project = get_object_or_404(Project, slug=slug)
    to = None
    if request.POST.get("deployment"):
        to = get_object_or_404(Deployment, pk=request.POST["deployment"], project=project)
    try:
        deployment = services.rollback(project, user=request.user, to=to)
        messages.success(request, f"Rolled back: {deployment.model_version} now serves {project}.")
    except services.ModelRegistryError as error:
        messages.error(request, str(error))
    return redirect("models_app:project", slug=project.slug)


@staff_required
@require_POST
def project_generate(request, slug):
    project = get_object_or_404(Project, slug=slug)
    try:
        job = services.start_generation(project, user=request.user)
        messages.success(request, f"Generation queued for {job.total} prompt{'s' if job.total != 1 else ''}.")
    except (services.GenerationError, services.DecodingConfigError) as error:
        messages.error(request, str(error))
    return redirect("models_app:project", slug=project.slug)


@staff_required
def project_jobs(request, slug):
    """The generation progress, as an htmx partial that polls itself while a job runs."""
    project = get_object_or_404(Project, slug=slug)
    context = _jobs_context(project)
    response = render(request, "models_app/_jobs.html", context)
    if request.htmx and request.GET.get("polling") and not context["polling"]:
        response["HX-Refresh"] = "true"  # the last job finished: reload once for the new task counts
    return response


@staff_required
def playground(request):
    form = PlaygroundForm(request.POST or None)
    results, error = None, None
    if request.method == "POST" and form.is_valid():
        try:
            results = services.playground_answers(
                form.cleaned_data["prompt"], form.cleaned_data["versions"], form.decoding(),
                k=form.cleaned_data["answers"],
            )
        except (services.GenerationError, services.DecodingConfigError, services.ModelRegistryError) as exc:
            error = str(exc)
        except OSError as exc:  # a version whose files are gone
            error = f"Could not load a model: {exc}"
    return render(request, "models_app/playground.html", {"form": form, "results": results, "error": error})
