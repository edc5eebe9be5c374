"""Staff inspect conversations here (read-only: a conversation is its owner's record)."""

from __future__ import annotations

from django.contrib import admin

from chat.models import ChangeSet, ChatSession, Message


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MessageInline(ReadOnlyMixin, admin.TabularInline):
    model = Message
    fields = ["seq", "role", "status", "content", "prompt_tokens", "completion_tokens", "cost"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(ChatSession)
class ChatSessionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "owner", "sheet", "archived", "created_at", "updated_at"]
    list_filter = ["archived"]
    search_fields = ["title", "owner__username"]
    list_select_related = ["owner", "sheet"]
    readonly_fields = ["summary", "summary_through_seq"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["session", "seq", "role", "status", "completion_tokens", "cost", "created_at"]
    list_filter = ["role", "status"]
    search_fields = ["content", "session__title"]
    list_select_related = ["session"]


@admin.register(ChangeSet)
class ChangeSetAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["tool", "session", "sheet", "status", "created_at", "decided_at"]
    list_filter = ["tool", "status"]
    list_select_related = ["session", "sheet"]
