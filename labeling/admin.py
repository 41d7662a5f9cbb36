from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .actions.memberships import remove_annotator
from .models import Annotation, Assignment, Candidate, ComparisonTask, Membership, PreferencePair, Project, Prompt


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ["user"]
    fields = ["user", "is_active", "role", "joined_at", "paused_at", "paused_reason", "qualified_at"]
    readonly_fields = ["joined_at", "paused_at", "paused_reason", "qualified_at"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "mode", "candidates_per_prompt", "overlap", "allow_ties", "is_archived", "created_at",
                    "page"]
    list_filter = ["mode", "is_archived", "allow_ties"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline]

    def save_formset(self, request, form, formset, change):
        """A membership switched off or deleted here ends the user's leases, as removing an
        annotator through the API does."""
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        gone = [m.user for m in formset.deleted_objects]
        gone += [m.user for m, fields in formset.changed_objects if "is_active" in fields and not m.is_active]
        for user in gone:
            remove_annotator(form.instance, user)

    @admin.display(description="Project page")
    def page(self, project):
        return format_html('<a href="{}">open</a>', reverse("labeling:project", args=[project.slug]))


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "project", "external_id", "split", "source", "created_at"]
    list_filter = ["project", "split"]
    search_fields = ["external_id", "source", "messages"]
    raw_id_fields = ["project"]
    readonly_fields = ["uid"]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["id", "short_text", "prompt", "origin", "is_flagged", "completion_tokens", "created_at"]
    list_filter = ["is_flagged", "prompt__project", "external_source"]
    search_fields = ["text", "external_id", "external_source"]
    raw_id_fields = ["prompt", "model_version"]
    list_select_related = ["model_version"]

    @admin.display(description="Text")
    def short_text(self, candidate):
        return candidate.text[:80]


@admin.register(ComparisonTask)
class ComparisonTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "prompt", "status", "overlap", "annotations_done", "leased", "is_gold",
                    "round_number", "created_at"]
    list_filter = ["status", "is_gold", "project"]
    search_fields = ["id", "prompt__external_id"]
    raw_id_fields = ["project", "prompt", "candidates"]
    list_select_related = ["project", "prompt"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "project", "status", "leased_at", "expires_at", "finished_at"]
    list_filter = ["status", "project"]
    search_fields = ["annotator__username", "task__id"]
    raw_id_fields = ["task", "annotator", "project"]
    list_select_related = ["task__project", "annotator", "project"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "ranking", "pairwise_choice", "time_on_task_ms", "created_at"]
    list_filter = ["task__project", "pairwise_choice"]
    search_fields = ["annotator__username", "rationale", "ideal_answer"]
    raw_id_fields = ["assignment", "task", "annotator"]
    list_select_related = ["task__project", "annotator"]
    date_hierarchy = "created_at"


@admin.register(PreferencePair)
class PreferencePairAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "source", "task", "chosen", "rejected", "votes_a", "votes_b", "votes_tie",
                    "is_tie", "agreement", "margin", "split"]
    list_filter = ["project", "source", "is_tie", "is_gold", "split"]
    search_fields = ["task__id", "external_id"]
    raw_id_fields = ["project", "task", "prompt", "candidate_a", "candidate_b", "chosen", "rejected"]
    list_select_related = ["project", "task__project", "chosen", "rejected"]
