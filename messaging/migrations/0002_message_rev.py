from django.db import migrations, models
from django.db.models import F


def fill_revisions(apps, schema_editor):
    """Existing messages take their seq as their revision, and each room's newest
    revision is its newest seq: edits made before revisions existed are not replayed,
    which no client can miss (none holds a revision yet). One UPDATE per table, whatever
    their size."""
    Message = apps.get_model("messaging", "Message")
    Room = apps.get_model("rooms", "Room")
    Message.objects.update(rev=F("seq"))
    Room.objects.update(last_rev=F("last_seq"))


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("rooms", "0004_room_last_rev"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="rev",
            field=models.PositiveBigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.RunPython(fill_revisions, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=("room", "rev"), name="messaging_message_room_rev"
            ),
        ),
    ]
