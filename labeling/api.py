"""The labeling REST API (/api/v1/): thin views over labeling.actions (every write),
labeling.queries (every read), labeling.importing, labeling.preference_import and
labeling.exporting; the serializers only check and shape. Admin (staff) endpoints: projects
(write), prompts, candidates, tasks, annotations, pairs, import, preference import, export.
Annotator endpoints: their projects (read), next task, their own assignments, submit and skip."""
import django_filters
from django.contrib.auth import get_user_model
from django.http import Http404, StreamingHttpResponse
from django.http.request import RawPostDataException
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from rankloop.api_common import IgnoreFormatParam, IsAdmin, IsAdminOrReadOnly

from . import exporting, importing, preference_import, quality, queries, review
from .actions.annotations import submit_annotation
from .actions.assignments import assign_next, skip_task
from .actions.candidates import add_candidate
from .actions.memberships import add_annotator, remove_annotator
from .actions.projects import create_project, update_project
from .actions.prompts import create_prompt, delete_prompt
from .actions.tasks import close_task, create_task, set_task_priority
from .errors import Conflict, NotAllowed, NotFound, NotYours, Paused
from .extensions import project_field_relations
from .models import Annotation, Assignment, Candidate, ComparisonTask, PreferencePair, Project, Prompt
from .pair_filters import PairFilters
from .serializers import (
    AnnotationSerializer,
    AnnotatorProjectSerializer,
    AssignmentSerializer,
    CandidateSerializer,
    ImportReportSerializer,
    ImportUploadSerializer,
    PairSerializer,
    PreferenceImportReportSerializer,
    PreferenceUploadSerializer,
    ProjectSerializer,
    PromptSerializer,
    ReviewDecisionSerializer,
    ReviewItemSerializer,
    ReviewNoteSerializer,
    SubmissionSerializer,
    TaskCreateSerializer,
    TaskPrioritySerializer,
    TaskSerializer,
)


class BodyParser(JSONParser):
    """Lets the import endpoint accept a raw JSON Lines or CSV body; the view reads the bytes."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


# --- filters ---------------------------------------------------------------------------------


class ProjectFilter(django_filters.FilterSet):
    class Meta:
        model = Project
        fields = ["mode", "is_archived"]


class PromptFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Prompt
        fields = ["project", "split", "external_id", "source"]


class CandidateFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="prompt__project__slug")

    class Meta:
        model = Candidate
        fields = ["project", "prompt", "external_source", "external_id", "model_version", "is_flagged"]


class TaskFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    round = django_filters.NumberFilter(field_name="round_number")

    class Meta:
        model = ComparisonTask
        fields = ["project", "status", "is_gold", "round", "prompt"]


class AnnotationFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="task__project__slug")
    annotator = django_filters.CharFilter(field_name="annotator__username")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Annotation
        fields = ["project", "task", "annotator", "created_after"]


class PairFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    round = django_filters.NumberFilter(field_name="round_number")
    min_agreement = django_filters.NumberFilter(field_name="agreement", lookup_expr="gte")

    class Meta:
        model = PreferencePair
        fields = ["project", "task", "round", "min_agreement", "is_tie", "is_gold", "split", "source"]


class AssignmentFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Assignment
        fields = ["project", "status"]


# --- projects --------------------------------------------------------------------------------

EXPORT_PARAMETERS = [
    OpenApiParameter("format", str, enum=list(exporting.FORMATS), description="standard (default), "
                     "conversational or raw"),
    OpenApiParameter("rounds", str, description="Round numbers, comma-separated"),
    OpenApiParameter("min_agreement", float, description="Share of annotators in the majority, 0..1"),
    OpenApiParameter("ties", str, enum=["include", "exclude"], description="Default exclude"),
    OpenApiParameter("gold", str, enum=["include", "exclude"], description="Default exclude"),
    OpenApiParameter("split", str, enum=list(Prompt.Split.values)),
    OpenApiParameter("source", str, description='Only pairs from these sources, comma-separated or repeated: '
                     '"labels" (annotators), "import:<name>" (imported files)'),
]


def _upload(request):
    """(bytes, file name or None, the multipart form's fields) of an import: the multipart field
    `file`, or the whole body. A 413 Response instead when it is over the import limit."""
    limit = importing.settings.RANKLOOP_IMPORT_MAX_BYTES
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit + 64 * 1024:
        return Response({"detail": f"The upload is {length:,} bytes; the import limit is {limit:,} bytes. "
                                   "Split the file (a re-import skips what was already imported)."},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    content_type = request.content_type or ""
    if content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("file")
        if upload is None:
            raise serializers.ValidationError({"file": "Upload the file as the multipart field 'file'."})
        return upload.read(), upload.name, request.data
    try:
        return request._request.body, None, {}
    except RawPostDataException:  # a form body already parsed (session + CSRF check)
        raise serializers.ValidationError({"file": "Send the file as multipart field 'file', or as the body "
                                                   "with Content-Type application/x-ndjson or text/csv."}) from None


class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                     mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Projects: admins create and change them; annotators read the projects they label."""

    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = ProjectFilter

    def get_queryset(self):
        return queries.projects_visible_to(self.request.user).select_related(*project_field_relations())

    def get_serializer_class(self):
        if self.request.user.is_authenticated and self.request.user.is_staff:
            return ProjectSerializer
        return AnnotatorProjectSerializer

    def perform_create(self, serializer):
        serializer.instance = create_project(created_by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = update_project(serializer.instance, **serializer.validated_data)

    @extend_schema(request=None, responses={200: AssignmentSerializer, 204: OpenApiResponse(
        description="Nothing left for you in this project.")})
    @action(detail=True, methods=["post"], url_path="next-task", permission_classes=[IsAuthenticated])
    def next_task(self, request, slug=None):
        """Lease your next task in this project (or get your live lease back)."""
        # assign_next checks membership itself; a project you don't label answers 404.
        try:
            project = queries.labeling_project(slug, request.user)
            assignment = assign_next(project, request.user)
        except Paused:
            raise  # 403 with the reason: a paused annotator must learn why
        except (NotAllowed, NotFound):
            raise Http404 from None
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(assignment, context=self.get_serializer_context()).data)

    @extend_schema(responses=inline_serializer("ProjectProgress", {
        "progress": serializers.DictField(), "agreement": serializers.DictField()}))
    @action(detail=True, methods=["get"], permission_classes=[IsAdmin])
    def progress(self, request, slug=None):
        project = self.get_object()
        return Response({"progress": queries.project_progress(project),
                         "agreement": queries.project_agreement(project)})

    @extend_schema(request=inline_serializer("AnnotatorRef", {
        "username": serializers.CharField(),
        "role": serializers.ChoiceField(["annotator", "reviewer"], required=False)}), responses={204: None})
    @action(detail=True, methods=["post", "delete"], permission_classes=[IsAdmin])
    def annotators(self, request, slug=None):
        """Add (POST, with an optional role: annotator or reviewer) or remove (DELETE) an annotator of
        this project, by username."""
        project = self.get_object()
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str) or not username:
            raise serializers.ValidationError({"username": "Required."})
        user = get_object_or_404(get_user_model(), username=username)
        if request.method == "POST":
            add_annotator(project, user, role=request.data.get("role"))
        else:
            remove_annotator(project, user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: ReviewItemSerializer, 204: OpenApiResponse(
        description="Nothing to review.")})
    @action(detail=True, methods=["get"], url_path="review/next", permission_classes=[IsAuthenticated])
    def review_next(self, request, slug=None):
        """The oldest open item of the project's review queue (reviewers and staff)."""
        project = self.get_object()
        item = review.next_item(project, request.user)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewItemSerializer(item).data)

    @extend_schema(responses=ReviewNoteSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="my-reviews", permission_classes=[IsAuthenticated])
    def my_reviews(self, request, slug=None):
        """Your own rejected annotations in this project, with the reviewers' notes."""
        return Response(ReviewNoteSerializer(review.rejected_work(self.get_object(), request.user), many=True).data)

    @extend_schema(responses=inline_serializer("AnnotatorQuality", {
        "annotators": serializers.ListField(child=serializers.DictField()),
        "agreement_by_round": serializers.ListField(child=serializers.DictField()),
        "excluded_annotations": serializers.DictField()}))
    @action(detail=True, methods=["get"], permission_classes=[IsAdmin])
    def quality(self, request, slug=None):
        """Each annotator's gold accuracy (Wilson 95% interval), agreement with the others, skip rate,
        time on task and standing (paused, qualifying)."""
        project = self.get_object()
        return Response({"annotators": quality.annotator_quality(project),
                         "agreement_by_round": queries.agreement_by_round(project),
                         "excluded_annotations": queries.excluded_annotation_counts(project)})

    @extend_schema(request=inline_serializer("ReinstateRef", {"username": serializers.CharField()}),
                   responses={204: None})
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def reinstate(self, request, slug=None):
        """Lift an annotator's pause (a quality gate's, or staff's): they get tasks again, and the
        gates start a new window. 409 when they were not paused."""
        project = self.get_object()
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str) or not username:
            raise serializers.ValidationError({"username": "Required."})
        user = get_object_or_404(get_user_model(), username=username)
        if not quality.reinstate_annotator(project, user):
            raise Conflict(f"{username} is not paused in this project.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"], description="Default: from the "
                                     "file name or content type"),
                    OpenApiParameter("priority", int, description="Priority of the new tasks whose line gives "
                                     "none (higher is served first; default 0)")],
        request={"multipart/form-data": ImportUploadSerializer,
                 "application/x-ndjson": OpenApiTypes.BINARY, "text/csv": OpenApiTypes.BINARY},
        responses={201: ImportReportSerializer})
    @action(detail=True, methods=["post"], url_path="import", permission_classes=[IsAdmin],
            parser_classes=[MultiPartParser, FormParser, BodyParser], content_negotiation_class=IgnoreFormatParam)
    def import_prompts(self, request, slug=None):
        """Import prompts (and external candidates) from JSON Lines or CSV, uploaded as `file`
        (multipart) or sent as the body. All or nothing: a bad line gets an error naming the
        line and field, and nothing is imported."""
        project = self.get_object()
        upload = _upload(request)
        if isinstance(upload, Response):
            return upload
        data, filename, fields = upload
        fmt = request.query_params.get("format") or fields.get("format")
        priority = request.query_params.get("priority") or fields.get("priority")
        report = importing.import_prompts(project, data, fmt=fmt, filename=filename,
                                          content_type=request.content_type or "",
                                          source=f"import by {request.user.username}", priority=priority)
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("source", str, description='The data\'s name (default: the uploaded file\'s '
                                     'name); the pairs\' source is "import:<name>"'),
                    OpenApiParameter("limit", int, description="Import the first N lines only")],
        request={"multipart/form-data": PreferenceUploadSerializer, "application/x-ndjson": OpenApiTypes.BINARY},
        responses={201: PreferenceImportReportSerializer})
    @action(detail=True, methods=["post"], url_path="preferences/import", permission_classes=[IsAdmin],
            parser_classes=[MultiPartParser, FormParser, BodyParser], content_negotiation_class=IgnoreFormatParam)
    def import_preferences(self, request, slug=None):
        """Seed the project from existing preference data: TRL preference JSON Lines (standard,
        conversational or implicit prompt; gzip allowed), uploaded as `file` or sent as the body,
        become labelled pairs with the source "import:<name>". All or nothing: a bad line gets an
        error naming the line and field, and nothing is imported; a re-import adds nothing."""
        project = self.get_object()
        upload = _upload(request)
        if isinstance(upload, Response):
            return upload
        data, filename, fields = upload
        report = preference_import.import_preferences(
            project, data, filename=filename,
            source=request.query_params.get("source") or fields.get("source"),
            limit=request.query_params.get("limit") or fields.get("limit"))
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)

    @extend_schema(parameters=EXPORT_PARAMETERS, responses={
        (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="JSON Lines, streamed")})
    @action(detail=True, methods=["get"], permission_classes=[IsAdmin], content_negotiation_class=IgnoreFormatParam)
    def export(self, request, slug=None):
        """The project's preference data as JSON Lines, streamed as it is read."""
        project = self.get_object()
        fmt = exporting.check_format(request.query_params.get("format"))
        filters = PairFilters.from_params(request.query_params)
        response = StreamingHttpResponse(exporting.export_lines(project, fmt, filters),
                                         content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{exporting.export_filename(project, fmt)}"'
        # What the pairs leave out, so a consumer knows (reviewers' rejections, paused annotators).
        excluded = queries.excluded_annotation_counts(project)
        response["X-Rankloop-Excluded-Annotations"] = ", ".join(f"{k}={v}" for k, v in excluded.items())
        return response


# --- admin data ------------------------------------------------------------------------------


class PromptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.DestroyModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdmin]
    serializer_class = PromptSerializer
    filterset_class = PromptFilter
    queryset = queries.prompts()

    def perform_create(self, serializer):
        serializer.instance = create_prompt(**serializer.validated_data)

    def perform_destroy(self, prompt):
        delete_prompt(prompt)


class CandidateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                       viewsets.GenericViewSet):
    """Candidates; create one to add an external answer (from another system) to a prompt."""

    permission_classes = [IsAdmin]
    serializer_class = CandidateSerializer
    filterset_class = CandidateFilter
    queryset = queries.candidates()

    def perform_create(self, serializer):
        serializer.instance = add_candidate(**serializer.validated_data)


class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdmin]
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    queryset = queries.tasks()

    @extend_schema(request=TaskCreateSerializer, responses={201: TaskSerializer})
    def create(self, request):
        """A comparison task over two or more candidates of one prompt."""
        data = TaskCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = create_task(data.validated_data["prompt"], data.validated_data["candidate_ids"],
                           is_gold=data.validated_data["is_gold"],
                           gold_ranking=data.validated_data.get("gold_ranking"),
                           priority=data.validated_data["priority"])
        return Response(TaskSerializer(self.get_queryset().get(pk=task.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TaskPrioritySerializer, responses={200: TaskSerializer})
    def partial_update(self, request, pk=None):
        """Change a task's priority (the only field a PATCH changes): higher is served first."""
        task = self.get_object()
        data = TaskPrioritySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        set_task_priority(task, data.validated_data["priority"])
        return Response(TaskSerializer(self.get_queryset().get(pk=task.pk)).data)

    @extend_schema(request=None, responses={200: TaskSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Stop handing out this task."""
        task = self.get_object()
        close_task(task)
        return Response(TaskSerializer(self.get_queryset().get(pk=task.pk)).data)


class AnnotationViewSet(viewsets.ReadOnlyModelViewSet):
    """Every annotator's annotations (admins only)."""

    permission_classes = [IsAdmin]
    serializer_class = AnnotationSerializer
    filterset_class = AnnotationFilter
    queryset = queries.annotations()


class PairViewSet(viewsets.ReadOnlyModelViewSet):
    """Aggregated preference pairs (admins only); `export_id` is the id the exports carry."""

    permission_classes = [IsAdmin]
    serializer_class = PairSerializer
    filterset_class = PairFilter
    queryset = queries.pairs()


# --- the annotator's own work ----------------------------------------------------------------


class AssignmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Your own assignments (everyone, admins included, sees only their own here), with your
    submitted annotation; submit or skip one."""

    permission_classes = [IsAuthenticated]
    serializer_class = AssignmentSerializer
    filterset_class = AssignmentFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Assignment.objects.none()
        return queries.assignments_of(self.request.user)

    @extend_schema(request=SubmissionSerializer, responses={201: AnnotationSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Submit your ranking. Repeating the same submit returns the stored annotation."""
        # SubmissionSerializer documents the body; submission.clean_submission checks it (against
        # the task too), so no serializer is built on every submit.
        # The action checks existence, ownership, membership and the project's state under its
        # row lock; someone else's assignment answers 404 here, as it does for every other
        # assignment route (a former member's own one answers 403, an archived project 409).
        payload = request.data.dict() if hasattr(request.data, "dict") else request.data
        try:
            annotation = submit_annotation(pk, request.user, payload)
        except NotYours:
            raise Http404 from None
        return Response(AnnotationSerializer(annotation, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AssignmentSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        """Pass on this task: it goes to others, never back to you."""
        assignment = skip_task(self.get_object().pk, request.user)
        return Response(AssignmentSerializer(queries.assignments_of(request.user).get(pk=assignment.pk)).data)


class ReviewItemViewSet(viewsets.GenericViewSet):
    """Decide a review item: accept, reject with a note, or record the final ranking."""

    permission_classes = [IsAuthenticated]
    queryset = queries.review_items()

    @extend_schema(request=ReviewDecisionSerializer, responses=ReviewItemSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        body = request.data if isinstance(request.data, dict) else {}
        item = review.decide(pk, request.user, decision=body.get("decision"), note=body.get("note", ""),
                             ranking=body.get("ranking"), text=body.get("text"))
        return Response(ReviewItemSerializer(item).data)
