"""The README's "A client's first five minutes" runs as written against a real server.

The section's shell block and then its Python block run in one shell, as a reader
pastes them into a terminal, against a fresh daphne process: only the host and port
are swapped for the test server's. A README that drifts from the server fails here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.client import HOST, Server

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## A client's first five minutes"
DOCUMENTED_ADDRESS = "127.0.0.1:8000"


def section_code_blocks(text: str, heading: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block between ``heading`` and the next ``## ``."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```(\w*)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_the_section_has_the_shell_and_python_blocks() -> None:
    blocks = section_code_blocks(README.read_text(), SECTION)

    assert [language for language, _code in blocks] == ["sh", "python"]
    for _language, code in blocks:
        assert DOCUMENTED_ADDRESS in code


def test_a_clients_first_five_minutes_run_as_written(server: Server, tmp_path: Path) -> None:
    (_, shell), (_, python) = section_code_blocks(README.read_text(), SECTION)
    address = f"{HOST}:{server.port}"
    snippet = tmp_path / "live.py"
    snippet.write_text(python.replace(DOCUMENTED_ADDRESS, address))
    # One terminal: the shell block, then the Python block saved to a file and run.
    script = f'{shell.replace(DOCUMENTED_ADDRESS, address)}\n"$PYTHON" {snippet}\n'
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
    }
    env.pop("ACCESS", None)

    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    assert '"username":"alice"' in result.stdout, output
    assert '"name":"general"' in result.stdout, output
    assert '"body":"hello from curl"' in result.stdout, output
    assert "online: ['alice'] last seq: 1" in result.stdout, output
    assert result.stdout.rstrip().endswith("message.new hello, live"), output
