"""Room names unique under full Unicode case folding, kept in ``name_folded``.

The old constraint compared LOWER(name), which SQLite applies to ASCII only: a database
may hold names that are equal folded ("Äpfel" and "äpfel"). The first of each such set
(by id) keeps the folded name; the others get a key no other name folds to, so the
constraint holds; renaming such a room folds its name afresh.
"""

import unicodedata

from django.db import migrations, models

import common.text


def fold_case(value):
    # common.text.fold_case as of this migration.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def fill_name_folded(apps, schema_editor):
    Room = apps.get_model("rooms", "Room")
    taken = set()
    for room in Room.objects.order_by("pk").only("pk", "name").iterator():
        folded = fold_case(room.name)
        if folded in taken:
            folded = f"{folded}\x1f{room.pk}"  # a name cannot hold a control character
        taken.add(folded)
        Room.objects.filter(pk=room.pk).update(name_folded=folded)


NAME_VALIDATORS = [
    common.text.validate_no_control_characters,
    common.text.validate_no_format_characters,
]


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="room",
            name="rooms_room_name_ci_unique",
        ),
        migrations.AddField(
            model_name="room",
            name="name_folded",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(fill_name_folded, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="room",
            name="name",
            field=models.CharField(max_length=64, validators=NAME_VALIDATORS),
        ),
        migrations.AlterField(
            model_name="room",
            name="topic",
            field=models.CharField(blank=True, max_length=256, validators=NAME_VALIDATORS),
        ),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.UniqueConstraint(
                fields=("name_folded",),
                name="rooms_room_name_folded_unique",
                violation_error_message="A room with that name already exists.",
            ),
        ),
    ]
