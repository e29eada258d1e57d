"""``config.settings.base`` as production loads it, in a process of its own."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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
