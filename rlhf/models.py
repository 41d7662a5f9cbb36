"""Rounds (one trip around the loop) and the training runs inside them."""
from django.conf import settings
from django.db import models

from labeling.models import ComparisonTask, PreferencePair
from models_app.models import GenerationJob

from .algorithms import Algorithm


class Round(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        GENERATING = "generating", "Generating"
        LABELING = "labeling", "Labeling"
        TRAINING = "training", "Training"
        EVALUATING = "evaluating", "Evaluating"
        EVALUATED = "evaluated", "Evaluated"
        DEPLOYED = "deployed", "Deployed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    Algorithm = Algorithm

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT)
    # Blank until training is launched (a round opened by "Generate candidates" has none yet).
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices, blank=True, default="")
    hyperparameters = models.JSONField(default=dict, blank=True)
    data_filters = models.JSONField(default=dict, blank=True)
    deploy_rule = models.JSONField(default=dict, blank=True)
    # accelerate launch settings of this round, over the project's (rlhf.config.LAUNCHER).
    launcher = models.JSONField(default=dict, blank=True)
    policy_in = models.ForeignKey(
        "models_app.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="rounds_in"
    )
    policy_out = models.ForeignKey(
        "models_app.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="rounds_out"
    )
    reward_model = models.ForeignKey(
        "models_app.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="rounds_rm"
    )
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="round_number_unique")]

    def __str__(self):
        return f"{self.project} round {self.number}"

    # What the lower apps hold for this round, matched by (project, round number): they keep the
    # number, not a key to the round, so that no foreign key points up the app order.
    @property
    def tasks(self):
        return ComparisonTask.objects.filter(project_id=self.project_id, round_number=self.number)

    @property
    def pairs(self):
        return PreferencePair.objects.filter(project_id=self.project_id, round_number=self.number)

    @property
    def generation_jobs(self):
        return GenerationJob.objects.filter(project_id=self.project_id, round_number=self.number)


class RoundTransition(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=12)
    to_state = models.CharField(max_length=12)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]


class TrainingRun(models.Model):
    # Each algorithm is also the kind of the run that optimizes the policy with it.
    Kind = models.TextChoices("Kind", [("REWARD", ("reward", "Reward model")),
                                       *((a.name, (a.value, a.label)) for a in Algorithm),
                                       ("SFT", ("sft", "SFT")), ("EVAL", ("eval", "Evaluation"))])

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    config = models.JSONField(default=dict, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    celery_id = models.CharField(max_length=255, blank=True)
    checkpoint_dir = models.CharField(max_length=1000, blank=True)  # the run's folder (rlhf.launcher)
    output = models.OneToOneField("models_app.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="trained_by", help_text="The model version this run produced.")
    command = models.TextField(blank=True, help_text="The command line the stage was launched with.")
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.get_kind_display()} run {self.pk}"


class MetricPoint(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    value = models.FloatField()

    class Meta:
        ordering = ["run", "step", "id"]
        indexes = [models.Index(fields=["run", "name", "step"], name="metric_point_idx")]
