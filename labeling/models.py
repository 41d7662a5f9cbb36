"""The labeling domain: projects, prompts, candidates, comparison tasks, assignments,
annotations and the preference pairs aggregated from them.

State changes go through `labeling.actions`; these classes hold data and invariants."""
import hashlib
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

DEFAULT_FLAGS = ["harmful", "factually_wrong", "off_topic", "low_quality", "refusal"]
DEFAULT_ASPECTS = ["helpful", "harmless", "honest"]
PRIORITY_RANGE = (-32768, 32767)  # ComparisonTask.priority is a smallint


class Project(models.Model):
    class Mode(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise (A vs B)"
        RANKING = "ranking", "Ranking (K candidates)"
        DEMONSTRATION = "demonstration", "Demonstration (write the ideal reply)"

    class FlaggedCandidates(models.TextChoices):
        HIDE = "hide", "Hide flagged candidates from annotators"
        WARN = "warn", "Show flagged candidates with a warning"

    class LongPrompts(models.TextChoices):
        TRUNCATE = "truncate", "Truncate from the left, with a note"
        REFUSE = "refuse", "Refuse the prompt"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True, blank=True)
    description = models.TextField(blank=True)
    instructions = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PAIRWISE)
    candidates_per_prompt = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(2), MaxValueValidator(9)], help_text="K"
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Annotations wanted per task.",
    )
    lease_seconds = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(30)],
        help_text="How long an annotator holds a task before it goes back to the queue.",
    )
    allow_ties = models.BooleanField(default=True)
    rating_aspects = models.JSONField(default=list, blank=True, help_text='e.g. ["helpful", "harmless"]')
    rating_scale = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(2), MaxValueValidator(10)])
    flag_choices = models.JSONField(default=list, blank=True)
    shuffle_positions = models.BooleanField(default=True)
    gold_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of claims that serve a gold task (known ranking), scored against the annotator.")
    class QueueOrder(models.TextChoices):
        DEFAULT = "default", "Priority, then tasks already started, then oldest"
        UNCERTAINTY = "uncertainty", "Priority, then what the reward model is least sure of"

    queue_order = models.CharField(
        max_length=12, choices=QueueOrder.choices, default=QueueOrder.DEFAULT,
        help_text="uncertainty: after a reward model exists, tasks whose answers it cannot tell apart go first.")
    # Quality gates (labeling.quality): a qualification set, then automatic pause on low gold accuracy.
    qualification_tasks = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)],
        help_text="Gold tasks a new annotator must answer before real work (0: no qualification).")
    qualification_pass = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the qualification's gold tasks to get right to pass.")
    gold_min_accuracy = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Pause an annotator whose gold accuracy falls below this (empty: never).")
    exclude_paused_labels = models.BooleanField(
        default=False, help_text="A paused annotator's annotations leave the pairs (re-aggregated at once) until "
        "they are reinstated.")
    # Review (labeling.review): a random share of annotations, tasks under an agreement, flagged tasks.
    review_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of annotations sampled into the review queue.")
    review_agreement_below = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A completed task with a pair under this agreement goes to review (empty: none).")
    gold_min_tasks = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1)],
        help_text="Gold tasks answered (since the last reinstatement) before the accuracy gate applies.")
    heldout_percent = models.PositiveSmallIntegerField(
        default=10, validators=[MaxValueValidator(90)],
        help_text="Share of prompts held out from training (by prompt, stable).",
    )
    # Generation and moderation (models_app)
    decoding_config = models.JSONField(default=dict, blank=True)
    moderation_blocklist = models.JSONField(default=list, blank=True)
    moderation_patterns = models.JSONField(default=list, blank=True)
    flagged_candidates = models.CharField(
        max_length=8, choices=FlaggedCandidates.choices, default=FlaggedCandidates.WARN
    )
    long_prompts = models.CharField(max_length=8, choices=LongPrompts.choices, default=LongPrompts.TRUNCATE)
    # Training (rlhf): how its stages are launched (accelerate's settings, rlhf.config.LAUNCHER; a
    # round may override them). Its judge is models_app.ProjectJudge.
    launcher = models.JSONField(default=dict, blank=True,
                                help_text='accelerate launch settings, e.g. {"num_processes": 2}; '
                                          'a round may override them.')

    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="labeling_projects", blank=True
    )
    is_archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:200] or uuid.uuid4().hex[:12]
        super().save(*args, **kwargs)

    def clean(self):
        if self.mode == self.Mode.PAIRWISE and self.candidates_per_prompt != 2:
            raise ValidationError({"candidates_per_prompt": "Pairwise projects compare exactly 2 candidates."})
        if not isinstance(self.rating_aspects, list) or not all(
            isinstance(a, str) and a.strip() for a in self.rating_aspects
        ):
            raise ValidationError({"rating_aspects": "A list of aspect names."})
        if not isinstance(self.flag_choices, list) or not all(isinstance(f, str) for f in self.flag_choices):
            raise ValidationError({"flag_choices": "A list of flag names."})

    def get_absolute_url(self):
        return reverse("labeling:project", args=[self.slug])

    @property
    def flags(self):
        return self.flag_choices or DEFAULT_FLAGS

    def has_member(self, user):
        if not user.is_authenticated:
            return False
        if user.is_staff or user.pk in self.__dict__.get("_known_members", ()):
            return True
        return Membership.objects.filter(project=self, user=user, is_active=True).exists()

    def remember_member(self, user, state=None):
        """Note that `user` is an active member, read with this instance (saves a query), and their
        standing (labeling.quality.MemberState) when it was read too."""
        self.__dict__.setdefault("_known_members", set()).add(user.pk)
        if state is not None:
            self.__dict__.setdefault("_member_states", {})[user.pk] = state


class Membership(models.Model):
    class Role(models.TextChoices):
        ANNOTATOR = "annotator", "Annotator"
        REVIEWER = "reviewer", "Reviewer (also annotates)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    is_active = models.BooleanField(default=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    joined_at = models.DateTimeField(auto_now_add=True)
    # Quality gates: gold answered and right since joining or the last reinstatement (the gates'
    # window), when the qualification was passed, and a pause with its reason.
    gate_gold_done = models.PositiveIntegerField(default=0)
    gate_gold_correct = models.PositiveIntegerField(default=0)
    qualified_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} in {self.project}"


def stable_split(project_id: int, prompt_uid: uuid.UUID, heldout_percent: int) -> str:
    """Train/held-out by prompt, from a hash of its uid: stable across rounds and exports."""
    digest = hashlib.sha256(f"{project_id}:{prompt_uid}".encode()).digest()
    bucket = int.from_bytes(digest[:4], "big") % 100
    return Prompt.Split.HELDOUT if bucket < heldout_percent else Prompt.Split.TRAIN


class Prompt(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        HELDOUT = "heldout", "Held-out"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    messages = models.JSONField(help_text='Chat messages: [{"role": "user", "content": "..."}]')
    external_id = models.CharField(max_length=255, null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=255, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], condition=Q(external_id__isnull=False),
                name="prompt_external_id_unique_per_project",
            )
        ]

    def __str__(self):
        return self.preview

    def save(self, *args, **kwargs):
        if not self.split:
            self.split = stable_split(self.project_id, self.uid, self.project.heldout_percent)
        super().save(*args, **kwargs)

    @property
    def last_user_message(self):
        for message in reversed(self.messages or []):
            if message.get("role") == "user":
                return message.get("content", "")
        return ""

    @property
    def preview(self):
        text = self.last_user_message.strip().replace("\n", " ")
        return text[:80] + ("…" if len(text) > 80 else "")

    @property
    def text(self):
        """The conversation flattened to text (for the TRL standard format)."""
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in self.messages or [])


class Candidate(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="candidates")
    text = models.TextField()
    model_version = models.ForeignKey(
        "models_app.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="candidates"
    )
    decoding = models.JSONField(default=dict, blank=True, help_text="Full decoding settings that wrote it.")
    external_source = models.CharField(max_length=255, blank=True, help_text="System it was imported from.")
    external_id = models.CharField(max_length=255, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    generation_note = models.CharField(max_length=500, blank=True, help_text="e.g. prompt truncated")
    moderation = models.JSONField(default=dict, blank=True, help_text="Verdict of the moderation filter.")
    is_flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"#{self.pk}: {self.text[:60]}"

    @property
    def origin(self):
        if self.model_version_id:
            return str(self.model_version)
        return self.external_source or "hand-written"


class ComparisonTask(models.Model):
    # A gold task is answered by every annotator once, so its overlap is the most a smallint holds
    # and it stays open; it is served apart from the queue (gold_share) and never trains.
    GOLD_OVERLAP = 32767

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETE = "complete", "Complete"
        CLOSED = "closed", "Closed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    candidates = models.ManyToManyField(Candidate, related_name="tasks")
    # The number of the rlhf round (rlhf.Round.number in this project) whose generation wrote it;
    # empty outside rounds. A number, not a key: labeling sits below rlhf in the app order.
    round_number = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    overlap = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    # Denormalized so the queue query never counts rows.
    annotations_done = models.PositiveIntegerField(default=0)
    leased = models.PositiveIntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    gold_ranking = models.JSONField(null=True, blank=True, help_text="Tiers of candidate ids, best first.")
    adjudicated_ranking = models.JSONField(
        null=True, blank=True, help_text="A reviewer's final ranking (tiers, best first): overrides the majority.")
    priority = models.SmallIntegerField(default=0, help_text="Higher is served first (then most started, oldest).")
    # 0 = not scored (a number, not NULL: SQLite cannot index DESC NULLS LAST); scored tasks are above.
    uncertainty = models.FloatField(
        default=0.0, db_default=0.0, help_text="How unsure the latest reward model is about this task's answers, "
        "in (0, 2]; 0: not scored (higher first, with queue order uncertainty).")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The queue: open tasks of a project, highest priority first, then most started, then
            # oldest. The claim's ORDER BY repeats it, so it is one index scan.
            models.Index(
                F("project"), F("priority").desc(), (F("annotations_done") + F("leased")).desc(), F("id"),
                condition=Q(status="open", is_gold=False), name="task_queue_idx",
            ),
            # queue_order uncertainty: the same, with the reward model's uncertainty after priority.
            models.Index(
                F("project"), F("priority").desc(), F("uncertainty").desc(),
                (F("annotations_done") + F("leased")).desc(), F("id"),
                condition=Q(status="open", is_gold=False), name="task_uncertain_queue_idx",
            ),
            # Gold tasks are claimed apart, at the project's gold_share (each annotator once).
            models.Index(fields=["project", "id"], condition=Q(status="open", is_gold=True),
                         name="task_gold_queue_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotations_done__lte=F("overlap")), name="task_done_within_overlap"
            ),
        ]

    def __str__(self):
        return f"Task {self.pk} ({self.project})"

    @property
    def is_full(self):
        return self.annotations_done + self.leased >= self.overlap


class Assignment(models.Model):
    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    shown_order = models.JSONField(help_text="Candidate ids in the order they were shown.")
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="assignment_once_per_annotator"),
        ]
        indexes = [
            models.Index(fields=["annotator", "project", "status"], name="assignment_mine_idx"),
            models.Index(fields=["expires_at"], condition=Q(status="leased"), name="assignment_live_lease_idx"),
        ]

    def __str__(self):
        return f"{self.annotator} on task {self.task_id} ({self.status})"

    @property
    def is_live(self):
        return self.status == self.Status.LEASED and self.expires_at > timezone.now()


class Annotation(models.Model):
    class PairwiseChoice(models.TextChoices):
        A = "a", "A is better"
        B = "b", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both bad"

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="annotation")
    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    ranking = models.JSONField(help_text="Tiers of candidate ids, best first; ties share a tier.")
    pairwise_choice = models.CharField(max_length=10, choices=PairwiseChoice.choices, blank=True)
    ratings = models.JSONField(default=dict, blank=True, help_text="{candidate_id: {aspect: score}}")
    flags = models.JSONField(default=dict, blank=True, help_text="{candidate_id: [flag, ...]}")
    rationale = models.TextField(blank=True)
    ideal_answer = models.TextField(blank=True, help_text="A rewritten ideal answer (demonstration).")
    time_on_task_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # A reviewer rejected it: it no longer counts in the task's pairs.
    is_rejected = models.BooleanField(default=False, db_default=False)  # db_default: the submit inserts by hand

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["task", "annotator"], name="annotation_once_per_annotator")]

    def __str__(self):
        return f"Annotation {self.pk} by {self.annotator} on task {self.task_id}"

    def rank_of(self):
        """{candidate_id: tier index}, 0 best."""
        return {cid: tier_index for tier_index, tier in enumerate(self.ranking) for cid in tier}


class PreferencePair(models.Model):
    """One pair of candidates of a task, aggregated over its annotators. `candidate_a` has the
    smaller id (so a pair has one row, whose id is stable); `chosen`/`rejected` follow the
    majority (for a tie, chosen is candidate_a)."""

    LABELS = "labels"  # the source of pairs aggregated from annotations
    IMPORT_PREFIX = "import:"  # imported pairs: "import:<name>"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs")
    # The task whose annotations the pair aggregates; none for an imported pair (its winner came
    # with the file).
    task = models.ForeignKey(ComparisonTask, null=True, blank=True, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs")
    round_number = models.PositiveIntegerField(null=True, blank=True, help_text="Its task's round number.")
    candidate_a = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    candidate_b = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    chosen = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="pairs_chosen")
    rejected = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="pairs_rejected")
    votes_a = models.PositiveIntegerField(default=0)
    votes_b = models.PositiveIntegerField(default=0)
    votes_tie = models.PositiveIntegerField(default=0)
    is_tie = models.BooleanField(default=False)
    agreement = models.FloatField(help_text="Share of annotators who voted with the majority.")
    margin = models.FloatField(help_text="(votes for chosen - votes for rejected) / annotators; 0 for ties.")
    is_gold = models.BooleanField(default=False)
    split = models.CharField(max_length=8, choices=Prompt.Split.choices, db_index=True)
    source = models.CharField(
        max_length=120, default=LABELS, db_default=LABELS,
        help_text='Where the verdict comes from: "labels" (this project\'s annotators), "import:<name>" '
                  '(a preference file), "chat" (users of the chat).')
    external_id = models.CharField(max_length=255, null=True, blank=True, help_text="The imported line's id.")
    import_key = models.CharField(
        max_length=64, null=True, blank=True, editable=False,
        help_text="What a re-import recognises the line by: a hash of (source, id), else of its content.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "candidate_a", "candidate_b"], name="pair_unique_per_task"),
            models.UniqueConstraint(fields=["project", "import_key"], condition=Q(import_key__isnull=False),
                                    name="pair_import_key_unique_per_project"),
            models.CheckConstraint(condition=Q(candidate_a__lt=F("candidate_b")), name="pair_ordered"),
        ]
        indexes = [models.Index(fields=["project", "id"], name="pair_export_idx")]

    def __str__(self):
        relation = "=" if self.is_tie else ">"
        origin = f"task {self.task_id}" if self.task_id else self.source
        return f"{self.chosen_id} {relation} {self.rejected_id} ({origin})"

    @property
    def votes(self):
        return self.votes_a + self.votes_b + self.votes_tie


class ReviewItem(models.Model):
    """Work in a project's review queue: one annotation (sampled, or flagged by its annotator) or a
    whole task (its annotators disagree), and what the reviewer decided."""

    class Reason(models.TextChoices):
        SAMPLED = "sampled", "Sampled for review"
        FLAGGED = "flagged", "An answer was flagged"
        LOW_AGREEMENT = "low_agreement", "Annotators disagree"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        ADJUDICATED = "adjudicated", "Final ranking recorded"
        EDITED = "edited", "Reply edited"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_items")
    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="review_items")
    annotation = models.ForeignKey(Annotation, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="review_items")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="reviews")
    note = models.TextField(blank=True)
    final_ranking = models.JSONField(null=True, blank=True)
    original_text = models.TextField(blank=True, help_text="A demonstration's reply before the reviewer edited it.")
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # One item per annotation, and one per task for the task-wide reason.
            models.UniqueConstraint(fields=["annotation"], condition=Q(annotation__isnull=False),
                                    name="review_once_per_annotation"),
            models.UniqueConstraint(fields=["task", "reason"], condition=Q(annotation__isnull=True),
                                    name="review_once_per_task_reason"),
        ]
        indexes = [models.Index(fields=["project", "id"], condition=Q(status="open"), name="review_queue_idx")]

    def __str__(self):
        return f"Review {self.pk} of task {self.task_id} ({self.status})"
