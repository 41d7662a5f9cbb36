from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import Deployment, GenerationJob, ModelVersion, ProjectJudge


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "parent", "is_adapter", "project", "created_at", "page")
    list_filter = ("kind", "status", "is_adapter")
    search_fields = ("name", "base_model", "artifact_dir")
    raw_id_fields = ("parent", "project", "created_by")
    readonly_fields = ("created_at",)

    def page(self, obj):
        return format_html('<a href="{}">lineage</a>', reverse("models_app:version", args=[obj.pk]))

    def get_form(self, request, obj=None, **kwargs):
        form = type("CheckedModelVersionForm", (super().get_form(request, obj, **kwargs),),
                    {"clean": _clean_checks_it_loads})
        form.base_fields["base_model"].required = False  # filled in from the parent or the directory
        return form


def _clean_checks_it_loads(form):
    """A new or moved artifact must load, as in services.register_model."""
    from django import forms

    cleaned = super(type(form), form).clean()
    if form.errors or not ({"artifact_dir", "is_adapter", "parent", "kind"} & set(form.changed_data)):
        return cleaned
    version = ModelVersion(**{k: v for k, v in cleaned.items()
                              if k in {"kind", "artifact_dir", "is_adapter", "parent", "tokenizer_dir"}})
    try:
        services.check_loads(version)
    except services.ModelRegistryError as error:
        raise forms.ValidationError(str(error)) from None
    if not cleaned.get("base_model"):
        cleaned["base_model"] = (version.parent.base_model if version.parent
                                 else str(services.loading.artifact_path(version)))
    return cleaned


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("project", "model_version", "is_active", "upstream", "deployed_by", "deployed_at", "note")
    list_filter = ("is_active", "project")
    readonly_fields = ("project", "model_version", "deployed_by", "deployed_at", "is_active")

    def has_add_permission(self, request):
        return False  # deploy from the models pages (services.deploy keeps one active per project)


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "model_version", "status", "done", "total", "tasks_created", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in GenerationJob._meta.fields]

    def has_add_permission(self, request):
        return False


class ProjectJudgeForm(forms.ModelForm):
    class Meta:
        model = ProjectJudge
        fields = ["project", "model_version"]

    def clean_model_version(self):
        version = self.cleaned_data["model_version"]
        try:
            return services.check_judge(version)
        except services.ModelRegistryError as error:
            raise forms.ValidationError(error.message) from None


@admin.register(ProjectJudge)
class ProjectJudgeAdmin(admin.ModelAdmin):
    """A project's judge: the reward model its evaluations also score both policies with."""

    form = ProjectJudgeForm
    list_display = ("project", "model_version")
    raw_id_fields = ("project", "model_version")

    def save_model(self, request, obj, form, change):
        services.set_judge(obj.project, obj.model_version)

    def delete_model(self, request, obj):
        services.set_judge(obj.project, None)
