"""Room names unique (under case folding) among public rooms only.

A clash with a private room's name told anyone that the private room exists; now private
rooms may share a name with each other and with a public one. Going forward needs no data
step: the new constraint allows everything the old one did.

Going back, the old constraint over all rooms would refuse the names private rooms now
share. As in 0002, public rooms (then private ones, each by id) keep their folded name
first; a later room with the same folded name gets a key no other name folds to, and
renaming such a room folds its name afresh.
"""

from django.db import migrations, models


def make_folded_names_distinct(apps, schema_editor):
    Room = apps.get_model("rooms", "Room")
    taken = set()
    rooms = Room.objects.only("pk", "visibility", "name_folded")
    public = rooms.filter(visibility="public").order_by("pk")
    private = rooms.exclude(visibility="public").order_by("pk")
    for queryset in (public, private):
        for room in queryset.iterator():
            folded = room.name_folded
            if folded in taken:
                folded = f"{folded}\x1f{room.pk}"  # a name cannot hold a control character
                Room.objects.filter(pk=room.pk).update(name_folded=folded)
            taken.add(folded)


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0002_room_name_folded"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="room",
            name="rooms_room_name_folded_unique",
        ),
        migrations.RunPython(migrations.RunPython.noop, make_folded_names_distinct),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.UniqueConstraint(
                fields=("name_folded",),
                condition=models.Q(("visibility", "public")),
                name="rooms_room_name_folded_unique",
                violation_error_message="A room with that name already exists.",
            ),
        ),
    ]
