from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from rooms.models import NAME_TAKEN, Membership, Room
from rooms.selectors import room_name_taken
from rooms.services import membership_remove, room_delete, room_update


class MembershipInline(admin.TabularInline[Membership, Room]):
    """The room's members, read-only: add and remove them through the API or below."""

    model = Membership
    extra = 0
    fields = ["user", "joined_at", "last_read_seq"]
    readonly_fields = ["user", "joined_at", "last_read_seq"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        return False


class RoomAdminForm(forms.ModelForm[Room]):
    """The room form, refusing a public room's name taken by another public room under
    case folding as a field error (private rooms may share names, as in the API).

    The constraint is on ``name_folded``, which the form does not show, so the form's own
    constraint checks skip it and a clash would reach the database as an IntegrityError.
    """

    class Meta:
        model = Room
        fields = ["name", "topic", "visibility", "owner", "created_at"]

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()

    def clean(self) -> dict[str, Any]:
        # Here, not in clean_name: whether the name may be shared depends on visibility.
        super().clean()
        cleaned_data = self.cleaned_data
        name = cleaned_data.get("name")
        public = cleaned_data.get("visibility") == Room.Visibility.PUBLIC
        if name and public and room_name_taken(name=name, exclude_pk=self.instance.pk):
            self.add_error("name", forms.ValidationError(NAME_TAKEN, code="unique"))
        return cleaned_data


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin[Room]):
    """Rooms; deleting one here tells its live sockets, as the API does."""

    form = RoomAdminForm

    list_display = ["name", "visibility", "owner", "created_at", "last_activity_at", "last_seq"]
    list_filter = ["visibility"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner"]
    readonly_fields = ["last_seq", "last_activity_at"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> Any:
        # Changing the owner would leave the new one without a membership; a change
        # saves only what ``room_update`` changes.
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "owner", "created_at"]

    def save_model(
        self, request: HttpRequest, obj: Room, form: ModelForm[Room], change: bool
    ) -> None:
        if change:  # through the service, so that live sockets hear of it
            room_update(
                room=obj, by=None, name=obj.name, topic=obj.topic, visibility=obj.visibility
            )
        else:
            super().save_model(request, obj, form, change)
            # The owner is always a member (not through room_join, which refuses a
            # private room to anyone not yet in it, its owner included).
            Membership.objects.create(room=obj, user=obj.owner)

    def delete_model(self, request: HttpRequest, obj: Room) -> None:
        room_delete(room=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        for room in queryset:
            room_delete(room=room)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    """Memberships; removing one here closes that user's sockets in the room."""

    list_display = ["room", "user", "joined_at", "last_read_seq"]
    list_select_related = ["room", "user"]
    search_fields = ["room__name", "user__username"]
    raw_id_fields = ["room", "user"]
    readonly_fields = ["last_read_seq", "send_allowance", "send_checked_at"]

    def get_deleted_objects(
        self, objs: Sequence[Membership] | QuerySet[Membership], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        # The owner's membership goes only with the room: list it as protected, which
        # makes the admin refuse the deletion and say why.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        owners = [m for m in objs if m.user_id == m.room.owner_id]
        reasons = [f"{m}: the room's owner (delete the room instead)" for m in owners]
        return deleted, counts, perms_needed, [*protected, *reasons]

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(room=obj.room, user_id=obj.user_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("room"):
            if membership.user_id != membership.room.owner_id:
                membership_remove(room=membership.room, user_id=membership.user_id)
