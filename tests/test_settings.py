"""``config.settings.base`` as production loads it, in a process of its own."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What the repository publishes in config/settings/base.py: nobody may serve with it.
PUBLISHED_DEV_KEY = "django-insecure-development-key-do-not-use-in-production"


def load_base_settings(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` after ``django.setup()`` on the base settings, with only ``env`` set."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", f"import django; django.setup(); {code}"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def secret_key_of(**env: str) -> str:
    result = load_base_settings(
        "import json; from django.conf import settings; print(json.dumps(settings.SECRET_KEY))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout))


def test_without_a_secret_key_a_random_one_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"

    first = secret_key_of(DJANGO_SECRET_KEY_FILE=str(key_file))
    second = secret_key_of(DJANGO_SECRET_KEY_FILE=str(key_file))

    assert first != PUBLISHED_DEV_KEY
    assert len(first) >= 50
    assert first == second  # reused: tokens and sessions survive a restart
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_two_machines_without_a_secret_key_get_different_keys(tmp_path: Path) -> None:
    one = secret_key_of(DJANGO_SECRET_KEY_FILE=str(tmp_path / "one"))
    other = secret_key_of(DJANGO_SECRET_KEY_FILE=str(tmp_path / "other"))

    assert one != other


def test_a_secret_key_from_the_environment_wins_and_writes_no_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"

    key = secret_key_of(
        DJANGO_SECRET_KEY="from-the-environment", DJANGO_SECRET_KEY_FILE=str(key_file)
    )

    assert key == "from-the-environment"
    assert not key_file.exists()


def test_the_published_development_key_is_refused_unless_debug_is_on(tmp_path: Path) -> None:
    refused = load_base_settings("", DJANGO_SECRET_KEY=PUBLISHED_DEV_KEY)
    in_debug = secret_key_of(DJANGO_SECRET_KEY=PUBLISHED_DEV_KEY, DJANGO_DEBUG="true")

    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY" in refused.stderr
    assert in_debug == PUBLISHED_DEV_KEY


def test_the_project_folder_key_file_is_ignored_by_git() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".secret_key"], cwd=PROJECT_ROOT, check=False
    )

    assert result.returncode == 0


def test_sqlite_commits_are_synchronous_full_on_a_file_database(tmp_path: Path) -> None:
    """In WAL mode, NORMAL can lose acknowledged commits in a power cut; FULL cannot."""
    code = (
        "from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('PRAGMA synchronous'); synchronous = cursor.fetchone()[0]; "
        "cursor.execute('PRAGMA journal_mode'); print(synchronous, cursor.fetchone()[0])"
    )
    env: dict[str, Any] = {
        "DJANGO_SECRET_KEY": "x",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = load_base_settings(code, **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "wal"]  # 2 is FULL
    assert os.path.exists(tmp_path / "db.sqlite3")
