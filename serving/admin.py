"""Staff see every request's audit, the conversations and the feedback; they set serving
settings and rate limits per project and per user group, and turn chat traffic into labeling
work (actions on conversations and comparisons)."""
from django.contrib import admin, messages

from . import services
from .models import (
    ChatComparison,
    ChatProfile,
    Conversation,
    Feedback,
    Message,
    RateLimit,
    RequestAudit,
    ServingSettings,
)


@admin.register(ServingSettings)
class ServingSettingsAdmin(admin.ModelAdmin):
    list_display = ("project", "flagged_output", "max_n", "max_tokens")


@admin.register(RateLimit)
class RateLimitAdmin(admin.ModelAdmin):
    list_display = ("project", "group", "requests_per_minute", "tokens_per_day")
    list_filter = ("project", "group")


@admin.register(RequestAudit)
class RequestAuditAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "channel", "model_requested", "model_version", "status_code",
                    "prompt_tokens", "completion_tokens", "ttft_ms", "latency_ms", "flagged")
    list_filter = ("channel", "status_code", "project")
    search_fields = ("user__username", "model_requested", "error")
    readonly_fields = [f.name for f in RequestAudit._meta.fields]
    date_hierarchy = "created_at"

    @admin.display(boolean=True, description="flagged")
    def flagged(self, obj):
        verdict = obj.moderation or {}
        return bool((verdict.get("input") or {}).get("flagged") or (verdict.get("output") or {}).get("flagged"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("position", "role", "content", "status", "hidden", "model_version", "finish_reason", "is_flagged")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "user", "project", "opted_out", "sent_to_prompt", "updated_at")
    list_filter = ("project", "opted_out")
    search_fields = ("title", "user__username")
    readonly_fields = ("user", "project", "opted_out", "sent_to_prompt", "created_at", "updated_at")
    inlines = [MessageInline]
    actions = ["send_to_labeling"]

    @admin.action(description="Turn into prompts of their project's labeling queue (source chat)")
    def send_to_labeling(self, request, queryset):
        added, skipped = services.conversations_to_prompts(queryset.select_related("user", "project"))
        self.message_user(request, f"{added} prompts added; {skipped} skipped (opted out, already sent or empty).",
                          messages.SUCCESS)


@admin.register(ChatComparison)
class ChatComparisonAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "choice", "voter", "source", "pair", "created_at")
    list_filter = ("choice",)
    readonly_fields = ("conversation", "first", "second", "choice", "voter", "source", "pair", "created_at")
    actions = ["make_pairs"]

    @admin.action(description="Turn into preference pairs (source chat, with the voter)")
    def make_pairs(self, request, queryset):
        added, skipped = services.comparisons_to_pairs(queryset.select_related("conversation__user", "first", "second"))
        self.message_user(request, f"{added} preference pairs added; {skipped} skipped (opted out or already made).",
                          messages.SUCCESS)


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("message", "user", "thumbs_up", "comment", "created_at")
    list_filter = ("thumbs_up",)


admin.site.register(ChatProfile)
