"""Serving: the deployed policy as a chat and an OpenAI-compatible API. Conversations and their
messages, feedback and in-chat comparisons, per-project serving settings and rate limits, and
the audit of every request. Nothing outside this app imports it."""
from django.conf import settings
from django.db import models
from django.db.models import Q


class ServingSettings(models.Model):
    """How one project's deployed policy is served (a project without a row gets the defaults)."""

    class FlaggedOutput(models.TextChoices):
        CUT = "cut", "Cut the answer off where it is flagged"
        WARN = "warn", "Show the whole answer with a warning"

    project = models.OneToOneField("labeling.Project", on_delete=models.CASCADE, related_name="serving_settings")
    flagged_output = models.CharField(max_length=8, choices=FlaggedOutput.choices, default=FlaggedOutput.CUT)
    max_n = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Blank: RANKLOOP_SERVING_MAX_N.")
    max_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: RANKLOOP_SERVING_MAX_TOKENS.")

    class Meta:
        verbose_name_plural = "serving settings"

    def __str__(self):
        return f"Serving settings of {self.project}"


class RateLimit(models.Model):
    """Requests per minute and tokens per day, for a project, a user group, or both. The most
    specific row applies (project and group, then project, then group, then the settings). Each
    user counts all their requests together (chat page and every token); each API token counts
    on its own as well, against the same numbers."""

    project = models.ForeignKey("labeling.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    requests_per_minute = models.PositiveIntegerField()
    tokens_per_day = models.PositiveIntegerField(help_text="Prompt and completion tokens together.")

    class Meta:
        constraints = [
            # One row per scope (three partial constraints: SQLite has no NULLS NOT DISTINCT).
            models.UniqueConstraint(fields=["project", "group"], name="rate_limit_once_per_project_group"),
            models.UniqueConstraint(fields=["project"], condition=Q(group__isnull=True),
                                    name="rate_limit_once_per_project"),
            models.UniqueConstraint(fields=["group"], condition=Q(project__isnull=True),
                                    name="rate_limit_once_per_group"),
            models.CheckConstraint(condition=Q(project__isnull=False) | Q(group__isnull=False),
                                   name="rate_limit_has_scope"),
        ]

    def __str__(self):
        scope = " / ".join(str(x) for x in (self.project, self.group) if x is not None)
        return f"{scope}: {self.requests_per_minute}/min, {self.tokens_per_day} tokens/day"


class ChatProfile(models.Model):
    """A chat user's choices. Opted out: none of their conversations ever leaves the chat."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_profile")
    opted_out = models.BooleanField(default=False, help_text="Keep my conversations out of training data.")


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    opted_out = models.BooleanField(default=False, help_text="Never leaves the chat (the user opted out).")
    sent_to_prompt = models.ForeignKey(
        "labeling.Prompt", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The labeling prompt staff made of it (source chat).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="conversation_mine_idx")]

    def __str__(self):
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    """One message of a conversation. A regenerated answer is a new message at the same
    position; the one it replaced stays (hidden) for the comparison. Editing a user message
    hides it and everything after it, and adds the edited one."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the model"
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        INCOMPLETE = "incomplete", "Stopped before the end"
        CUT = "cut", "Cut off by moderation"
        REFUSED = "refused", "Refused"
        ERROR = "error", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    position = models.PositiveIntegerField()
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    hidden = models.BooleanField(default=False)
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 help_text="The answer this regenerated one replaced.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    error = models.CharField(max_length=500, blank=True)
    model_version = models.ForeignKey("models_app.ModelVersion", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    decoding = models.JSONField(default=dict, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    moderation = models.JSONField(default=dict, blank=True)
    is_flagged = models.BooleanField(default=False)
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.role} #{self.pk}: {self.content[:60]}"

    @property
    def is_finished(self):
        return self.status not in (self.Status.PENDING, self.Status.STREAMING)


class Feedback(models.Model):
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thumbs_up = models.BooleanField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now=True)


class ChatComparison(models.Model):
    """The user's answer to "which answer is better?" after a regenerate. `pair` is the
    labeling preference pair staff made of it (source chat)."""

    class Choice(models.TextChoices):
        FIRST = "first", "The earlier answer"
        SECOND = "second", "The regenerated answer"
        TIE = "tie", "Tie"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="comparisons")
    first = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    second = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="comparison")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20, default="chat", editable=False)
    pair = models.ForeignKey("labeling.PreferencePair", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.first_id} vs {self.second_id}: {self.choice}"


class RequestAudit(models.Model):
    """One request to the model, from the API or the chat page: who, which version, decoding
    settings, tokens, latency, the moderation verdict and the outcome."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    token_hint = models.CharField(max_length=12, blank=True, help_text="The token's first characters.")
    channel = models.CharField(max_length=8, help_text="api or chat")
    model_requested = models.CharField(max_length=300, blank=True)
    project = models.ForeignKey("labeling.Project", null=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey("models_app.ModelVersion", null=True, on_delete=models.SET_NULL,
                                      related_name="+")
    upstream = models.CharField(max_length=500, blank=True)
    decoding = models.JSONField(default=dict, blank=True)
    stream = models.BooleanField(default=False)
    n = models.PositiveSmallIntegerField(default=1)
    status_code = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=500, blank=True)
    finish_reasons = models.JSONField(default=list, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    moderation = models.JSONField(default=dict, blank=True, help_text='{"input": verdict, "output": verdict}')
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.channel} {self.status_code} {self.model_requested}"
