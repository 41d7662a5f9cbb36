"""The model-registry REST API (/api/v1/, admins only): model versions with lineage, and
deployments (deploy, rollback). Thin views over models_app.services; their refusals
(ModelRegistryError 400, DeploymentRefused 409) answer through rankloop.api_common."""
import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labeling.models import Project
from rankloop.api_common import IsAdmin

from . import services
from .models import Deployment, GenerationJob, ModelVersion


def _must_be_a_reward_model(version):
    try:
        services.check_judge(version)
    except services.ModelRegistryError as error:
        raise serializers.ValidationError(error.message) from None


def judge_field():
    """The project API's `judge` (labeling.extensions): a reward model version's id, or null."""
    return serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.all(), allow_null=True, required=False, write_only=True,
        validators=[_must_be_a_reward_model],
        help_text="A reward model that did not train on this project's rounds (e.g. one trained on public data); "
                  "without one, the previous round's reward model judges.")


class LineageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "name", "kind", "is_adapter"]


class ModelVersionSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    lineage = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "kind", "name", "parent", "base_model", "artifact_dir", "is_adapter", "tokenizer_dir",
                  "metrics", "origin", "project", "status", "notes", "created_at", "lineage"]
        read_only_fields = fields

    def get_lineage(self, obj) -> list[dict]:
        return LineageSerializer(obj.lineage(), many=True).data


class RegisterModelSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=1000, help_text="A local Hugging Face model directory on the server.")
    kind = serializers.ChoiceField(choices=ModelVersion.Kind.choices, default=ModelVersion.Kind.POLICY)
    name = serializers.CharField(max_length=200, required=False)
    parent = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True)
    is_adapter = serializers.BooleanField(default=False)
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all(), required=False,
                                           allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True)


class DeploymentSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_version_name = serializers.CharField(source="model_version.name", read_only=True)
    deployed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Deployment
        fields = ["id", "project", "model_version", "model_version_name", "deployed_by", "deployed_at",
                  "is_active", "note"]
        read_only_fields = fields


class DeploySerializer(serializers.Serializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    model_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RollbackSerializer(serializers.Serializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    to = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True,
                                            help_text="Default: the version deployed before the current one.")


class ModelVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = ModelVersion
        fields = ["kind", "status", "project", "parent", "name"]


class DeploymentFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Deployment
        fields = ["project", "is_active", "model_version"]


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Policies and reward models with their lineage; POST registers a local model directory
    (it must load)."""

    permission_classes = [IsAdmin]
    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilter
    queryset = ModelVersion.objects.select_related("project", "parent")

    @extend_schema(request=RegisterModelSerializer, responses={201: ModelVersionSerializer})
    def create(self, request):
        data = RegisterModelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.register_model(
            values["path"], kind=values["kind"], name=values.get("name"), parent=values.get("parent"),
            is_adapter=values["is_adapter"], project=values.get("project"), notes=values.get("notes", ""),
            user=request.user)
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Which policy serves each project, and the history; POST deploys a version, rollback
    puts an earlier one back."""

    permission_classes = [IsAdmin]
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter
    queryset = Deployment.objects.select_related("project", "model_version", "deployed_by")

    @extend_schema(request=DeploySerializer, responses={201: DeploymentSerializer})
    def create(self, request):
        data = DeploySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        deployment = services.deploy(values["project"], values["model_version"], user=request.user,
                                     note=values["note"])
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RollbackSerializer, responses={201: DeploymentSerializer})
    @action(detail=False, methods=["post"])
    def rollback(self, request):
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = get_object_or_404(Project, pk=data.validated_data["project"].pk)
        deployment = services.rollback(project, user=request.user, to=data.validated_data.get("to"))
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)


class GenerationJobSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = GenerationJob
        fields = ["id", "project", "round_number", "model_version", "prompt_ids", "k", "decoding",
                  "prepare_default_policy", "status", "phase", "done", "total", "percent", "tasks_created", "refused",
                  "error",
                  "celery_task_id", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class StartGenerationSerializer(serializers.Serializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    prompts = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, allow_empty=False,
                                    max_length=10000, help_text="Prompt ids of the project; default: every prompt.")
    model_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False,
                                                       help_text="A policy; default: the deployed one.")
    k = serializers.IntegerField(min_value=2, max_value=9, required=False,
                                 help_text="Answers per prompt; default: the project's candidates per prompt.")
    decoding = serializers.DictField(required=False, default=dict,
                                     help_text="Overrides of the project's decoding config, "
                                               'e.g. {"temperature": 0.7}.')


class GenerationJobFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = GenerationJob
        fields = ["project", "status"]


class GenerationJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Candidate generation: POST queues a job on the gpu queue (refused at once when the
    settings are bad); GET shows its progress, what it refused and why it failed."""

    permission_classes = [IsAdmin]
    serializer_class = GenerationJobSerializer
    filterset_class = GenerationJobFilter
    queryset = GenerationJob.objects.select_related("project")

    @extend_schema(request=StartGenerationSerializer, responses={202: GenerationJobSerializer})
    def create(self, request):
        data = StartGenerationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        job = services.start_generation(values["project"], values.get("prompts"), version=values.get("model_version"),
                                        k=values.get("k"), decoding=values["decoding"], user=request.user)
        return Response(GenerationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
