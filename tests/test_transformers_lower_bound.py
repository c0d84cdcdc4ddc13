"""The oldest transformers pyproject.toml accepts, tested: a fresh virtual environment with
that version (and the dependencies it asks for) over this environment's other packages,
running the model-family, successor-type and CLI-pipeline tests.

Marked ``lower_bound`` and skipped unless ``THESEUS_TEST_LOWER_BOUND=1`` (it downloads
transformers from PyPI and takes a few minutes):

    THESEUS_TEST_LOWER_BOUND=1 python -m pytest -q -m lower_bound
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("tests/test_families.py", "tests/test_successor_types.py", "tests/test_cli_pipeline.py")

pytestmark = [pytest.mark.lower_bound, pytest.mark.skipif(
    os.environ.get("THESEUS_TEST_LOWER_BOUND") != "1",
    reason="set THESEUS_TEST_LOWER_BOUND=1 (downloads the oldest supported transformers)")]


def lower_bound() -> str:
    """The version after ``transformers>=`` in pyproject.toml's dependencies."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"transformers>=([0-9.]+)', text)
    assert match, "pyproject.toml declares no transformers lower bound"
    return match.group(1)


def test_oldest_supported_transformers(tmp_path):
    version = lower_bound()
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "zz-parent-env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"transformers=={version}"],
                   check=True, timeout=900)
    got = subprocess.run([str(python), "-c", "import transformers; print(transformers.__version__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert got == version
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
                          cwd=ROOT, capture_output=True, text=True, timeout=3000,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stdout[-4000:]
