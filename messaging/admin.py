from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.exceptions import ValidationError as DRFValidationError

from messaging.models import Message
from messaging.serializers import MAX_BODY_LENGTH, validate_body
from messaging.services import MessageNotEditable, message_delete, message_update


class MessageAdminForm(forms.ModelForm[Message]):
    """Only the body changes, under the rules the API applies to an edit."""

    body = forms.CharField(widget=forms.Textarea, max_length=MAX_BODY_LENGTH, strip=False)

    class Meta:
        model = Message
        fields = ["body"]

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        try:
            return validate_body(body)
        except DRFValidationError as error:
            raise forms.ValidationError(error.detail) from error


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    """Messages, for moderation; an edit or deletion here reaches live sockets, as the API's do.

    Deleting is the API's soft delete: the message keeps its id and seq with an empty
    body, so clients' histories keep no gap. Messages are only ever created through
    the API, which gives each its room's next seq.
    """

    form = MessageAdminForm
    list_display = ["__str__", "room", "author", "short_body", "created_at", "edited_at"]
    list_filter = ["is_deleted"]
    list_select_related = ["room", "author"]
    search_fields = ["body", "author__username", "room__name"]
    readonly_fields = [
        "room",
        "author",
        "seq",
        "client_id",
        "created_at",
        "edited_at",
        "is_deleted",
    ]
    fields = [*readonly_fields[:3], "body", *readonly_fields[3:]]
    ordering = ["-created_at", "-id"]

    @admin.display(description="body")
    def short_body(self, obj: Message) -> str:
        return obj.body if len(obj.body) <= 80 else f"{obj.body[:79]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Message | None = None) -> Any:
        if obj is not None and obj.is_deleted:  # a deleted message cannot be edited
            return [*self.readonly_fields, "body"]
        return self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: Message, form: forms.ModelForm[Message], change: bool
    ) -> None:
        if "body" not in form.changed_data:
            return
        try:  # through the service, so that live sockets hear of it
            message_update(message=obj, body=obj.body)
        except MessageNotEditable:
            self.message_user(request, "The message was deleted meanwhile.", messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        message_delete(message=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        for message in queryset:
            message_delete(message=message)
