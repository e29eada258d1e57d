from django.db import migrations, models


class Migration(migrations.Migration):
    """Room.last_rev: the room's newest revision (API.md, Revisions). The messaging
    migration that gives each message its ``rev`` fills it."""

    dependencies = [
        ("rooms", "0003_room_name_unique_public"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="last_rev",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
