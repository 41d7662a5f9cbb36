"""DRF serializers of the labeling API: shapes on the wire and input checks at the edge. They never
write: the views pass what they checked to labeling.actions (or labeling.importing)."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rankloop.errors import RankloopError

from .exporting import pseudonym
from .extensions import check_project_setting, project_fields
from .importing import _RowChecker
from .models import PRIORITY_RANGE, Annotation, Assignment, Candidate, ComparisonTask, PreferencePair, Project, Prompt
from .review import item_annotations
from .submission import text_problem


def reject_unstorable_text(value, path="value"):
    """Postgres text and JSON cannot hold NUL characters or lone surrogates (JSON can spell
    both): refuse them here, anywhere in the value, with a clear message."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise serializers.ValidationError(f"{path} {problem}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_unstorable_text(key, f"a key of {path}")
            reject_unstorable_text(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_unstorable_text(item, f"{path}[{i}]")
    return value


class ValidateOnly:
    """A ModelSerializer that checks input and shapes output, and never writes: the view passes
    `validated_data` to the action (labeling.actions), so save() has nothing to call."""

    def create(self, validated_data):
        raise NotImplementedError("Writes go through labeling.actions, not the serializer.")

    def update(self, instance, validated_data):
        raise NotImplementedError("Writes go through labeling.actions, not the serializer.")


_DATETIME = serializers.DateTimeField()


def _datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


class ProjectSerializer(ValidateOnly, serializers.ModelSerializer):
    # Made from the name once and then fixed: it is in every URL and client script.
    slug = serializers.SlugField(read_only=True)

    class Meta:
        model = Project
        fields = [
            "id", "name", "slug", "description", "instructions", "mode", "candidates_per_prompt", "overlap",
            "lease_seconds", "allow_ties", "rating_aspects", "rating_scale", "flag_choices", "shuffle_positions",
            "gold_share", "qualification_tasks", "qualification_pass", "gold_min_accuracy", "gold_min_tasks",
            "review_share", "review_agreement_below", "queue_order", "exclude_paused_labels",
            "heldout_percent", "decoding_config", "flagged_candidates", "long_prompts",
            "launcher", "is_archived", "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def get_fields(self):
        fields = super().get_fields()
        for name, extra in project_fields().items():  # settings the apps above keep (labeling.extensions)
            fields[name] = extra.field()
        return fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name, extra in project_fields().items():
            data[name] = extra.read(instance)
        return data

    def validate(self, attrs):
        reject_unstorable_text(attrs, "project")
        for name in ("rating_aspects", "flag_choices"):
            # `null` included: a form body's "null" parses as JSON None, which the column refuses.
            if name in attrs and (not isinstance(attrs[name], list) or not all(
                    isinstance(a, str) and a.strip() and len(a) <= 100 for a in attrs[name])):
                raise serializers.ValidationError({name: "A list of names (an empty list for none), not null."})
        if "decoding_config" in attrs and not isinstance(attrs["decoding_config"], dict):
            raise serializers.ValidationError({"decoding_config": "An object of decoding settings."})
        if "launcher" in attrs:
            try:
                attrs["launcher"] = check_project_setting("launcher", attrs["launcher"])
            except (RankloopError, ValueError) as exc:
                raise serializers.ValidationError({"launcher": str(exc)}) from None
        mode = attrs.get("mode", getattr(self.instance, "mode", Project.Mode.PAIRWISE))
        k = attrs.get("candidates_per_prompt", getattr(self.instance, "candidates_per_prompt", 2))
        if mode == Project.Mode.PAIRWISE and k != 2:
            raise serializers.ValidationError({"candidates_per_prompt": "Pairwise projects compare exactly 2."})
        return attrs


class AnnotatorProjectSerializer(serializers.ModelSerializer):
    """What an annotator sees of a project they label."""

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "instructions", "mode", "candidates_per_prompt", "allow_ties",
                  "rating_aspects", "rating_scale", "flag_choices"]
        read_only_fields = fields


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(trim_whitespace=False)


class PromptSerializer(ValidateOnly, serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    messages = serializers.JSONField(
        help_text='Text, or chat messages [{"role": "user", "content": "..."}] ending with the user\'s turn.')
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False)

    class Meta:
        model = Prompt
        fields = ["id", "uid", "project", "messages", "external_id", "tags", "source", "split", "created_at"]
        read_only_fields = ["id", "uid", "split", "created_at"]
        validators = []  # the (project, external_id) uniqueness is checked in validate(), optional id

    def validate(self, attrs):
        checker = _RowChecker(attrs["project"])
        messages = checker._messages(1, attrs["messages"], field_name="messages")
        if messages is None:
            raise serializers.ValidationError({e["field"]: e["message"] for e in checker.errors.items})
        attrs["messages"] = messages
        reject_unstorable_text(attrs, "prompt")
        external_id = attrs.get("external_id")
        if external_id and Prompt.objects.filter(project=attrs["project"], external_id=external_id).exists():
            raise serializers.ValidationError({"external_id": "This project already has a prompt with this id."})
        return attrs


class CandidateSerializer(ValidateOnly, serializers.ModelSerializer):
    text = serializers.CharField(trim_whitespace=False)
    origin = serializers.CharField(read_only=True)

    class Meta:
        model = Candidate
        fields = ["id", "prompt", "text", "external_source", "external_id", "model_version", "decoding",
                  "prompt_tokens", "completion_tokens", "latency_ms", "generation_note", "moderation",
                  "is_flagged", "origin", "created_at"]
        read_only_fields = ["id", "model_version", "decoding", "prompt_tokens", "completion_tokens", "latency_ms",
                            "generation_note", "moderation", "is_flagged", "origin", "created_at"]

    def validate_text(self, value):
        if not value.strip():
            raise serializers.ValidationError("An answer cannot be empty.")
        return value


# The next-task and submit answers (ShownCandidate, Assignment and Annotation serializers) are
# written out in to_representation: a ModelSerializer builds and deep-copies its fields for every
# instance, which cost more than the rest of the request. The declared fields still describe them
# in the schema, and tests/api/test_representations.py checks both give the same output.


class ShownCandidateSerializer(serializers.ModelSerializer):
    """A candidate as an annotator sees it: no origin, so nothing gives the source away."""

    class Meta:
        model = Candidate
        fields = ["id", "text", "is_flagged"]

    def to_representation(self, candidate):
        return {"id": candidate.pk, "text": candidate.text, "is_flagged": candidate.is_flagged}


class TaskSerializer(serializers.ModelSerializer):
    candidate_ids = serializers.PrimaryKeyRelatedField(
        source="candidates", many=True, queryset=Candidate.objects.all())

    class Meta:
        model = ComparisonTask
        fields = ["id", "project", "prompt", "candidate_ids", "round_number", "status", "overlap",
                  "annotations_done", "leased", "is_gold", "gold_ranking", "priority", "created_at", "completed_at"]
        read_only_fields = ["id", "project", "round_number", "status", "overlap", "annotations_done",
                            "leased", "created_at", "completed_at", "priority"]


class TaskCreateSerializer(serializers.Serializer):
    prompt = serializers.PrimaryKeyRelatedField(queryset=Prompt.objects.all())
    candidate_ids = serializers.PrimaryKeyRelatedField(many=True, queryset=Candidate.objects.all())
    is_gold = serializers.BooleanField(default=False)
    gold_ranking = serializers.JSONField(required=False, allow_null=True,
                                         help_text="Tiers of candidate ids, best first (gold tasks).")
    priority = serializers.IntegerField(default=0, min_value=PRIORITY_RANGE[0], max_value=PRIORITY_RANGE[1],
                                        help_text="Higher is served first (then most started, then oldest).")


class TaskPrioritySerializer(serializers.Serializer):
    """A task's PATCH: its priority only."""

    priority = serializers.IntegerField(min_value=PRIORITY_RANGE[0], max_value=PRIORITY_RANGE[1],
                                        help_text="Higher is served first (then most started, then oldest).")


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = ["id", "task", "annotator", "ranking", "pairwise_choice", "ratings", "flags", "rationale",
                  "ideal_answer", "time_on_task_ms", "created_at"]
        read_only_fields = fields

    def to_representation(self, obj):
        return {
            "id": obj.pk, "task": obj.task_id, "annotator": self.get_annotator(obj), "ranking": obj.ranking,
            "pairwise_choice": obj.pairwise_choice, "ratings": obj.ratings, "flags": obj.flags,
            "rationale": obj.rationale, "ideal_answer": obj.ideal_answer, "time_on_task_ms": obj.time_on_task_ms,
            "created_at": _datetime(obj.created_at),
        }

    def get_annotator(self, obj) -> str:
        # Admins see who; annotators only ever see their own (and know who they are).
        request = self.context.get("request")
        if request is not None and request.user.is_staff:
            return obj.annotator.username
        return pseudonym(obj.annotator_id)


class AssignmentSerializer(serializers.ModelSerializer):
    """An annotator's assignment: the task's prompt and candidates in the order shown."""

    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    prompt = serializers.SerializerMethodField()
    candidates = serializers.SerializerMethodField()
    annotation = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "task", "project", "status", "prompt", "candidates", "shown_order", "leased_at",
                  "expires_at", "finished_at", "annotation"]
        read_only_fields = fields

    def to_representation(self, obj):
        return {
            "id": obj.pk, "task": obj.task_id, "project": obj.project.slug, "status": obj.status,
            "prompt": self.get_prompt(obj), "candidates": self.get_candidates(obj), "shown_order": obj.shown_order,
            "leased_at": _datetime(obj.leased_at), "expires_at": _datetime(obj.expires_at),
            "finished_at": _datetime(obj.finished_at), "annotation": self.get_annotation(obj),
        }

    def get_prompt(self, obj) -> list:
        return obj.task.prompt.messages

    @extend_schema_field(ShownCandidateSerializer(many=True))
    def get_candidates(self, obj) -> list:
        shown = getattr(obj, "candidates_in_order", None)  # set by assign_next: no query
        if shown is None:
            by_id = {c.pk: c for c in obj.task.candidates.all()}
            shown = [by_id[int(i)] for i in obj.shown_order if int(i) in by_id]
        candidate = ShownCandidateSerializer()
        return [candidate.to_representation(c) for c in shown]

    @extend_schema_field(AnnotationSerializer(allow_null=True))
    def get_annotation(self, obj) -> dict | None:
        annotation = getattr(obj, "annotation", None) if obj.status == Assignment.Status.SUBMITTED else None
        return AnnotationSerializer().to_representation(annotation) if annotation else None


class SubmissionSerializer(serializers.Serializer):
    """A ranking as tiers of candidate ids best first (ties share a tier), or for two
    candidates a pairwise choice (a, b, tie, both_bad) in the order shown.

    It documents the submit body; submission.clean_submission checks it, against the task."""

    ranking = serializers.JSONField(required=False, help_text="e.g. [[12], [14, 15], [13]]")
    choice = serializers.ChoiceField(choices=Annotation.PairwiseChoice.choices, required=False)
    ratings = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField(min_value=1)),
                                    required=False, help_text='{"candidate id": {"aspect": score}}, scores '
                                    'integers from 1 to the project\'s rating_scale')
    flags = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                  help_text='{"candidate id": ["flag", ...]}')
    rationale = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    ideal_answer = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    time_on_task_ms = serializers.IntegerField(required=False, min_value=0)


class PairSerializer(serializers.ModelSerializer):
    export_id = serializers.SerializerMethodField()

    class Meta:
        model = PreferencePair
        fields = ["id", "export_id", "project", "task", "prompt", "round_number", "candidate_a",
                  "candidate_b", "chosen", "rejected", "votes_a", "votes_b", "votes_tie", "is_tie", "agreement",
                  "margin", "is_gold", "split", "source", "external_id", "updated_at"]
        read_only_fields = fields

    def get_export_id(self, obj) -> str:
        from .formats import pair_id

        return pair_id(obj.pk)


class ImportReportSerializer(serializers.Serializer):
    prompts_created = serializers.IntegerField()
    prompts_skipped_existing = serializers.IntegerField()
    candidates_created = serializers.IntegerField()
    tasks_created = serializers.IntegerField()


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .jsonl or .csv file.")
    format = serializers.ChoiceField(choices=["jsonl", "csv"], required=False)
    priority = serializers.IntegerField(required=False, min_value=PRIORITY_RANGE[0], max_value=PRIORITY_RANGE[1],
                                        help_text="Priority of the new tasks whose line gives none (default 0).")


class ReviewDecisionSerializer(serializers.Serializer):
    """A reviewer's decision (documents the body; labeling.review.decide checks it)."""

    decision = serializers.ChoiceField(choices=["accept", "reject", "adjudicate", "edit"])
    text = serializers.CharField(required=False, help_text="A demonstration's reply as the reviewer rewrote it (edit).")
    note = serializers.CharField(required=False, allow_blank=True, help_text="Required when rejecting.")
    ranking = serializers.JSONField(required=False, help_text="The final ranking: tiers of candidate ids, best first.")


class ReviewItemSerializer(serializers.Serializer):
    """An item of the review queue with what the reviewer needs to decide it."""

    id = serializers.IntegerField()
    reason = serializers.CharField()
    status = serializers.CharField()
    task = serializers.IntegerField(source="task_id")
    prompt = serializers.SerializerMethodField()
    candidates = serializers.SerializerMethodField()
    annotations = serializers.SerializerMethodField()
    note = serializers.CharField()
    final_ranking = serializers.JSONField()

    def get_prompt(self, item) -> list:
        return item.task.prompt.messages

    def get_candidates(self, item) -> list:
        return [{"id": c.pk, "text": c.text} for c in item.task.candidates.order_by("id")]

    def get_annotations(self, item) -> list:
        annotations = item_annotations(item)
        return [{"id": a.pk, "annotator": a.annotator.get_username(), "ranking": a.ranking, "flags": a.flags,
                 "rationale": a.rationale, "reply": a.ideal_answer} for a in annotations]


class ReviewNoteSerializer(serializers.Serializer):
    """A reviewer's note on one of your rejected annotations."""

    annotation = serializers.IntegerField(source="annotation_id")
    task = serializers.IntegerField(source="task_id")
    prompt = serializers.SerializerMethodField()
    note = serializers.CharField()
    reviewed_at = serializers.DateTimeField()

    def get_prompt(self, item) -> list:
        return item.task.prompt.messages


class PreferenceImportReportSerializer(serializers.Serializer):
    source = serializers.CharField(help_text='The pairs\' source, e.g. "import:hh-rlhf".')
    pairs_created = serializers.IntegerField()
    pairs_skipped_existing = serializers.IntegerField(help_text="Lines imported before (by id, else content).")
    duplicate_lines_skipped = serializers.IntegerField(help_text="Lines repeating an earlier line of the file.")
    prompts_created = serializers.IntegerField()
    prompts_matched = serializers.IntegerField(help_text="Prompts the project already had (same messages).")
    candidates_created = serializers.IntegerField()


class PreferenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="TRL preference JSON Lines (.jsonl, or .jsonl.gz).")
    source = serializers.CharField(required=False, help_text="The data's name (default: the file's name); the "
                                   'pairs\' source is "import:<name>".')
    limit = serializers.IntegerField(required=False, min_value=1, help_text="Import the first N lines only.")
