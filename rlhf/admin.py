from django.contrib import admin

from .models import MetricPoint, Round, RoundTransition, TrainingRun


class RoundTransitionInline(admin.TabularInline):
    model = RoundTransition
    extra = 0
    can_delete = False
    readonly_fields = ("from_state", "to_state", "by", "at", "note")

    def has_add_permission(self, request, obj=None):
        return False  # transitions happen through the services, never by hand


class TrainingRunInline(admin.TabularInline):
    model = TrainingRun
    extra = 0
    can_delete = False
    fields = ("kind", "status", "step", "total_steps", "heartbeat_at", "error")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("__str__", "state", "algorithm", "policy_in", "policy_out", "updated_at")
    list_filter = ("state", "algorithm", "project")
    # State, outputs and metrics change only through rlhf.services (the round page has the buttons).
    readonly_fields = ("project", "number", "state", "algorithm", "hyperparameters", "data_filters", "deploy_rule",
                       "policy_in", "policy_out", "reward_model", "metrics", "error", "started_by",
                       "created_at", "updated_at")
    inlines = [TrainingRunInline, RoundTransitionInline]

    def has_add_permission(self, request):
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "round", "kind", "status", "step", "total_steps", "heartbeat_at")
    list_filter = ("kind", "status")
    readonly_fields = [f.name for f in TrainingRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ("run", "step", "name", "value")
    list_filter = ("name",)
    readonly_fields = ("run", "step", "name", "value")

    def has_add_permission(self, request):
        return False
