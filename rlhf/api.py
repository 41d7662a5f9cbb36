"""The rounds REST API (/api/v1/rounds/, admins only): launch, status (runs, progress,
metrics), cancel, retry, deploy, rollback. Thin views over rlhf.services; their refusals
(RoundError 400, RoundConflict 409) answer through rankloop.api_common."""
import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labeling.models import Project
from rankloop.api_common import IsAdmin

from . import services
from .models import Round, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = ["id", "kind", "output", "status", "step", "total_steps", "heartbeat_at", "error", "started_at",
                  "finished_at", "config", "command"]
        read_only_fields = fields


class RoundSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    runs = TrainingRunSerializer(many=True, read_only=True)
    label = serializers.SerializerMethodField(help_text='How the round reads, e.g. "Evaluated" or "Superseded" '
                                                        '(a deployed round whose policy no longer serves).')
    percent = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField(help_text="What the percent measures now, in words.")
    next_step = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField(help_text="The actions the round offers now: launch, cancel, "
                                                          "retry, deploy, discard, rollback.")
    metrics = serializers.JSONField(read_only=True, help_text="Evaluation figures; null: not measured "
                                                              "(e.g. no held-out pairs).")

    class Meta:
        model = Round
        fields = ["id", "project", "number", "state", "label", "algorithm", "hyperparameters", "data_filters",
                  "deploy_rule", "launcher", "policy_in", "policy_out", "reward_model", "metrics", "error",
                  "started_by", "created_at", "updated_at", "percent", "progress", "next_step", "actions", "runs"]
        read_only_fields = fields

    def _status(self, obj):
        cache = self.context.setdefault("round_status", {})
        if obj.pk not in cache:
            cache[obj.pk] = services.round_status(obj)
        return cache[obj.pk]

    def get_label(self, obj) -> str:
        return self._status(obj).view.label

    def get_percent(self, obj) -> int:
        return self._status(obj).percent

    def get_progress(self, obj) -> str:
        return self._status(obj).text

    def get_next_step(self, obj) -> str:
        return self._status(obj).next_step

    def get_actions(self, obj) -> list[str]:
        return [action.name for action in self._status(obj).actions]


class LaunchSerializer(serializers.Serializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    algorithm = serializers.ChoiceField(choices=Round.Algorithm.choices)
    hyperparameters = serializers.JSONField(required=False, default=dict,
                                            help_text='e.g. {"policy": {"learning_rate": 1e-6}}')
    data_filters = serializers.JSONField(required=False, default=dict, help_text='e.g. {"min_agreement": 0.6}')
    deploy_rule = serializers.JSONField(required=False, default=dict, help_text='e.g. {"min_win_rate": 0.55}')
    launcher = serializers.JSONField(required=False, default=dict,
                                     help_text='accelerate launch settings over the project\'s, e.g. '
                                               '{"num_processes": 2, "mixed_precision": "bf16"}')


class GenerateRoundSerializer(serializers.Serializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    prompts = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, allow_empty=False,
                                    max_length=10000, help_text="Prompt ids; default: the prompts the deployed "
                                                                "policy has not answered, up to `count`.")
    count = serializers.IntegerField(min_value=1, max_value=10000, default=100,
                                     help_text="How many unanswered prompts, when `prompts` is not given.")
    k = serializers.IntegerField(min_value=2, max_value=9, required=False)
    decoding = serializers.DictField(required=False, default=dict)


class DeployRoundSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RoundFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Round
        fields = ["project", "state", "algorithm", "number"]


class RoundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdmin]
    serializer_class = RoundSerializer
    filterset_class = RoundFilter
    queryset = Round.objects.select_related("project", "started_by").prefetch_related("runs")

    def _answer(self, round, code=status.HTTP_200_OK):
        return Response(RoundSerializer(self.get_queryset().get(pk=round.pk), context={}).data, status=code)

    @extend_schema(request=LaunchSerializer, responses={201: RoundSerializer})
    def create(self, request):
        """Launch a round: train a reward model and optimize the deployed policy (or DPO on the
        pairs), then evaluate; refused with the reason when settings or data do not allow it."""
        data = LaunchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        round = services.launch_round(values["project"], user=request.user, algorithm=values["algorithm"],
                                      hyperparameters=values["hyperparameters"],
                                      data_filters=values["data_filters"], deploy_rule=values["deploy_rule"],
                                      launcher=values["launcher"])
        return self._answer(round, status.HTTP_201_CREATED)

    @extend_schema(request=GenerateRoundSerializer, responses={201: RoundSerializer})
    @action(detail=False, methods=["post"])
    def generate(self, request):
        """Open a labeling round: the deployed policy writes candidates for the prompts (a
        generation job on the gpu queue, its progress on the round); it moves to labeling when done."""
        data = GenerateRoundSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        round = services.start_labeling_round(values["project"], values.get("prompts"), count=values["count"],
                                              user=request.user, k=values.get("k"),
                                              decoding=values["decoding"] or None)
        return self._answer(round, status.HTTP_201_CREATED)

    def _act(self, function, **kwargs):
        round = function(self.get_object(), user=self.request.user, **kwargs)
        return self._answer(round)

    @extend_schema(request=None, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop an unfinished round: pending runs are revoked, a running one stops at its next step."""
        return self._act(services.cancel_round)

    @extend_schema(request=None, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        """An evaluated round whose policy is not wanted: it ends as cancelled, the policy stays."""
        return self._act(services.discard_round)

    @extend_schema(request=None, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed or cancelled round again from where it stopped."""
        return self._act(services.retry_round)

    @extend_schema(request=DeployRoundSerializer, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def deploy(self, request, pk=None):
        """Deploy the round's new policy on its project."""
        data = DeployRoundSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._act(services.deploy_round, note=data.validated_data["note"])

    @extend_schema(request=None, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Put back the policy the round started from."""
        return self._act(services.rollback_round)

    @extend_schema(request=inline_serializer("ScoreUncertainty", {"project": serializers.SlugField()}),
                   responses={202: None})
    @action(detail=False, methods=["post"], url_path="score-uncertainty")
    def score_uncertainty(self, request):
        """Queue the scoring of a project's open tasks by its latest reward model (and the one
        before): with queue order uncertainty, what they cannot tell apart is labelled first."""
        from . import uncertainty

        slug = request.data.get("project") if isinstance(request.data, dict) else None
        project = Project.objects.filter(slug=slug).first() if isinstance(slug, str) else None
        if project is None:
            raise serializers.ValidationError({"project": "A project slug."})
        uncertainty.reward_models(project)  # NoRewardModel (409) when there is none
        services.queue_uncertainty_scoring(project)
        return Response(status=status.HTTP_202_ACCEPTED)
