"""Helpers shared by the bad-input and fault catalogues (tests/test_bad_inputs.py,
tests/test_faults.py): run a command and assert that it failed cleanly and changed
no published file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import cli, flat


def published(ws: Path) -> dict[str, str]:
    """sha256 of every file of every published version (``artifacts/*/*/v*/**``)."""
    out = {}
    for f in sorted((ws / "artifacts").glob("*/*/v*/**/*")):
        if f.is_file():
            out[f.relative_to(ws).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def expect(result, code: int, *needles: str) -> str:
    """Assert the exit status, the phrases in the output and no traceback."""
    text = flat(result.output)
    assert result.exit_code == code, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Traceback" not in text
    return text


def fails(ws: Path, args: list, code: int, *needles: str) -> str:
    """Run ``theseus ARGS -w WS``: it fails with ``code`` and changes no published file."""
    before = published(ws)
    text = expect(cli(*args, "-w", ws, ok=False), code, *needles)
    assert published(ws) == before
    return text


def art(ws: Path, stage: str, rel: str = "", version: str = "v1") -> Path:
    return ws / "artifacts" / "MRPC" / stage / version / rel


def flip(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
