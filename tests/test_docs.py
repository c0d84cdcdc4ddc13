"""The documentation: the README stays a newcomer's first page, and the MkDocs site
(docs/, mkdocs.yml) builds without a warning.

The README is read by automated checks: its first code block's first line is the
set-up-and-main-job command, and CI (.ci/run) runs its test command verbatim.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEST_COMMAND = ". .venv/bin/activate && python -m pytest -q"


def _code_blocks(text: str) -> list[str]:
    """The contents of the fenced code blocks of a Markdown text, in order."""
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, (
        f"README.md has {len(lines)} lines; move detail into docs/"
    )


def test_readme_first_code_block_is_the_set_up_command() -> None:
    blocks = _code_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no fenced code block"
    first_line = blocks[0].splitlines()[0]
    assert first_line.startswith("python3 -m venv"), first_line


def test_readme_has_the_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    assert TEST_COMMAND in text.splitlines()
    # in a code block of its own, as CI runs it
    assert any(block.strip() == TEST_COMMAND for block in _code_blocks(text))


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # the Material banner
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    # the plugin contract's API reference was generated from the docstrings
    api = (site / "plugin-api" / "index.html").read_text(encoding="utf-8")
    for name in (
        "theseus_cli.plugin.stage.Stage",
        "theseus_cli.plugin.scheduler.Scheduler",
        "theseus_cli.plugin.stage.StageContext",
        "theseus_cli.plugin.base.param",
    ):
        assert f'id="{name}"' in api, name
