from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.services import (
    user_display_name_or_default,
    user_sessions_revoke,
    user_set_active,
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin, plus the display name."""

    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Chat", {"fields": ("display_name",)}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Chat", {"classes": ("wide",), "fields": ("display_name",)}),
    )
    list_display = ("username", "display_name", "is_active", "is_staff", "date_joined")
    search_fields = ("username", "display_name", "email")

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        obj.display_name = user_display_name_or_default(
            display_name=obj.display_name, username=obj.username
        )
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            user_set_active(user=obj, is_active=False)  # closes their live sockets

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # changed
            # As over the API: the tokens issued before stop working, the sockets close.
            user = self.get_object(request, unquote(id))
            if user is not None:
                user_sessions_revoke(user=user)
        return response
