"""Usernames unique under full Unicode case folding, kept in ``username_folded``.

The old constraint compared LOWER(username), which SQLite applies to ASCII only: a
database may hold names that are equal folded ("Äxyz" and "äxyz"). The first of each
such set (by id) keeps the folded name; the others get a key no username can have, so
the constraint holds, and they still log in with their name exactly as it is spelled.
"""

import unicodedata

from django.db import migrations, models

import common.text


def fold_case(value):
    # common.text.fold_case as of this migration.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def fill_username_folded(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    taken = set()
    for user in User.objects.order_by("pk").only("pk", "username").iterator():
        folded = fold_case(user.username)
        if folded in taken:
            folded = f"{folded}#{user.pk}"  # "#" is not allowed in a username
        taken.add(folded)
        User.objects.filter(pk=user.pk).update(username_folded=folded)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_token_generation"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="user",
            name="accounts_user_username_ci_unique",
        ),
        migrations.AddField(
            model_name="user",
            name="username_folded",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(fill_username_folded, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="display_name",
            field=models.CharField(
                blank=True,
                max_length=64,
                validators=[
                    common.text.validate_no_control_characters,
                    common.text.validate_no_format_characters,
                ],
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                fields=("username_folded",),
                name="accounts_user_username_folded_unique",
                violation_error_message="A user with that username already exists.",
            ),
        ),
    ]
