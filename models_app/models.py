"""Model registry: versions (policies and reward models) with lineage, and deployments."""
from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    class Kind(models.TextChoices):
        POLICY = "policy", "Policy"
        REWARD = "reward", "Reward model"

    class Status(models.TextChoices):
        READY = "ready", "Ready"
        TRAINING = "training", "Training"
        FAILED = "failed", "Failed"
        ARCHIVED = "archived", "Archived"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    base_model = models.CharField(max_length=500, help_text="Where the lineage starts (a path or hub id).")
    artifact_dir = models.CharField(max_length=1000, help_text="Directory in the model store.")
    is_adapter = models.BooleanField(default=False, help_text="A LoRA adapter over the parent, not full weights.")
    tokenizer_dir = models.CharField(max_length=1000, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # What produced it, in words (the run itself points here: rlhf.TrainingRun.output).
    origin = models.CharField(max_length=200, blank=True,
                              help_text='e.g. "round 3, DPO run 17"; empty for a registered directory.')
    project = models.ForeignKey(
        "labeling.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="model_version_name_unique")]

    def __str__(self):
        return self.name

    def lineage(self):
        """This version, its parent, … back to the base model."""
        chain, seen, node = [], set(), self
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return chain


class Deployment(models.Model):
    """Which policy serves a project. The active one has is_active; the rest is history."""

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="deployments")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deployed_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=500, blank=True)
    # Where the chat and the OpenAI-compatible API (the serving app) send this policy's requests:
    # an OpenAI-compatible server's base URL (vLLM, `transformers serve`), or "embedded" for
    # settings.RANKLOOP_EMBEDDED_UPSTREAM_URL (the `transformers serve` that `make demo` starts).
    upstream = models.CharField(
        max_length=500, default="embedded", blank=True,
        help_text='"embedded", or an OpenAI-compatible server\'s base URL, e.g. http://gpu-1:8000/v1',
    )
    upstream_model = models.CharField(
        max_length=500, blank=True,
        help_text="The name the upstream knows this policy by (vLLM's --served-model-name or a LoRA "
        "module); blank: the version's directory (what `transformers serve` loads).",
    )

    class Meta:
        ordering = ["-deployed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="one_active_deployment_per_project"
            )
        ]

    def __str__(self):
        return f"{self.model_version} on {self.project}"


class ProjectJudge(models.Model):
    """The reward model a project's round evaluations also score both policies with: one that did
    not train on the project's rounds (e.g. trained on public data). Without one, the previous
    round's reward model judges. (Here, above labeling, so that the project points at nothing up
    the app order.)"""

    project = models.OneToOneField("labeling.Project", on_delete=models.CASCADE, primary_key=True,
                                   related_name="judge_choice")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="judge_choices",
                                      help_text="A reward model version.")

    def __str__(self):
        return f"{self.model_version} judges {self.project}"


class GenerationJob(models.Model):
    """One run of candidate generation for a set of prompts: its progress shows on the
    project page, and a failure keeps its reason."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="generation_jobs")
    # The rlhf round (its number in the project) this job writes candidates for; empty outside rounds.
    round_number = models.PositiveIntegerField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_jobs"
    )
    prompt_ids = models.JSONField(default=list)
    k = models.PositiveSmallIntegerField(null=True, blank=True,
                                         help_text="Answers per prompt; empty: the project's candidates per prompt.")
    decoding = models.JSONField(default=dict, blank=True, help_text="Overrides of the project's decoding config.")
    prepare_default_policy = models.BooleanField(
        default=False,
        help_text="Convert, register and deploy the bundled default policy first, in the worker (the demo's jobs).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Prompts handled (generated, skipped or refused).")
    tasks_created = models.PositiveIntegerField(default=0)
    refused = models.JSONField(default=list, blank=True, help_text='[{"prompt": id, "reason": "..."}]')
    phase = models.CharField(max_length=200, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Generation {self.pk} on {self.project} ({self.status})"

    @property
    def percent(self):
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def is_finished(self):
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
