"""Versioned, immutable artifacts, in the manner of Kedro and DVC.

Layout inside a workspace::

    artifacts/<task>/<stage>/v1/manifest.json   # one complete, immutable version
    artifacts/<task>/<stage>/v1/...             # the stage's output files
    artifacts/<task>/<stage>/.staging-<id>/     # a run in progress (never listed)
    artifacts/<task>/<stage>/.checkpoints-<id>/ # its resumable checkpoints (never listed)
    artifacts/<task>/<stage>/.lock              # held while a run of the stage is going

A version directory only ever appears by an atomic ``rename`` of a finished
staging directory whose ``manifest.json`` was written last, so a listed version
is always complete; an interrupted run leaves at most a hidden staging dir.

Test hook: when the environment variable ``THESEUS_TEST_HOLD_PUBLISH`` names a
file, :meth:`ArtifactStore.publish` creates that file right before its rename
(the manifest is written, the version not yet visible) and waits until the
file is deleted, so a test can kill a process in the middle of a publish, or
hold a run while it starts another. For the test-suite only; never set it
otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theseus_cli.errors import ArtifactError, IntegrityError
from theseus_cli.store import jsonio

MANIFEST = "manifest.json"
SEAL = ".manifest.sha256"  # sha256 of the manifest, beside it
SCHEMA = 2  # 2: a seal (.manifest.sha256) beside the manifest; strict JSON
VERSION_RE = re.compile(r"^v(\d+)$")  # a version directory's name
_LAST_VERSION = ".last-version"  # highest version number ever published in a stage dir
HOLD_PUBLISH_ENV = "THESEUS_TEST_HOLD_PUBLISH"  # test hook, see the module docstring


def _hold(marker: Path) -> None:
    """Test hook: create ``marker`` and wait until someone deletes it."""
    marker.write_text(str(os.getpid()), encoding="utf-8")
    while marker.exists():
        time.sleep(0.05)


def _follow_umask(root: Path) -> None:
    """Give every file and folder under ``root`` the mode the user's umask gives new
    files (libraries write some files 0600 through temporary files)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(root, 0o777 & ~mask)
    for p in root.rglob("*"):
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (main thread only) until the block ends, so a
    signal never lands between the rename of a version and its bookkeeping."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """One complete version of one stage's output for one task."""

    path: Path
    task: str
    stage: str
    version: int

    @property
    def name(self) -> str:
        """``"v3"``."""
        return f"v{self.version}"

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def label(self) -> str:
        """``"MRPC/replace/v3"``."""
        return f"{self.task}/{self.stage}/{self.name}"

    @property
    def manifest(self) -> dict[str, Any]:
        """The parsed manifest.

        Raises:
            IntegrityError: it is unreadable or not JSON.
        """
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise IntegrityError(f"{self.label} is corrupted: manifest.json is unreadable ({e}). "
                                 f"Nothing was read from it. To recover, "
                                 f"{recovery_hint(self.label)}") from None

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.manifest_path)

    def file(self, relpath: str) -> Path:
        """Path of an output file or directory of this version.

        Raises:
            IntegrityError: the version lacks it (names how to recover).
        """
        p = self.path / relpath
        if not p.exists():
            raise IntegrityError(f"{self.label} has no {relpath!r}; to recover, "
                                 f"{recovery_hint(self.label)}")
        return p


class _NotAncestor(ArtifactError):
    """``lineage``: the stage is not among an artifact's ancestors."""


def parse_version(text: str) -> int:
    """``"v3"`` or ``"3"`` -> 3.

    Raises:
        ArtifactError: anything else (names the value and the accepted form).
    """
    m = re.fullmatch(r"v?(\d+)", text.strip())
    if not m:
        raise ArtifactError(f"invalid version {text!r}; accepted: vN or N, e.g. v3")
    return int(m.group(1))


class ArtifactStore:
    """All artifacts of one workspace (``<workspace>/artifacts``)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def stage_dir(self, task: str, stage: str) -> Path:
        return self.root / task / stage

    def versions(self, task: str, stage: str) -> list[Artifact]:
        """Complete versions, oldest first."""
        d = self.stage_dir(task, stage)
        if not d.is_dir():
            return []
        found = []
        for child in d.iterdir():
            m = VERSION_RE.match(child.name)
            if m and (child / MANIFEST).is_file():
                found.append(Artifact(child, task, stage, int(m.group(1))))
        return sorted(found, key=lambda a: a.version)

    def latest(self, task: str, stage: str) -> Artifact | None:
        """The newest complete version, or None."""
        versions = self.versions(task, stage)
        return versions[-1] if versions else None

    def get(self, task: str, stage: str, version: int | str) -> Artifact:
        """A specific complete version.

        Raises:
            ArtifactError: it does not exist (lists the versions that do).
        """
        n = parse_version(version) if isinstance(version, str) else version
        versions = self.versions(task, stage)
        for a in versions:
            if a.version == n:
                return a
        have = ", ".join(a.name for a in versions) or "none"
        raise ArtifactError(f"{task}/{stage} has no complete version v{n}; existing: {have}")

    def lineage(self, artifact: Artifact, stage: str) -> Artifact:
        """The ``stage`` artifact that ``artifact`` was (transitively) made from.

        E.g. the finetune-teacher version behind a finetune-successor version.

        Raises:
            ArtifactError: ``stage`` is not among its ancestors, or an ancestor
                version was removed or changed since (manifest hash mismatch).
        """
        if artifact.stage == stage:
            return artifact
        for name, ref in artifact.manifest.get("inputs", {}).items():
            parent = self.get(artifact.task, name, ref["version"])
            if parent.manifest_sha256 != ref["manifest_sha256"]:
                raise ArtifactError(f"{artifact.task}/{name}/{parent.name} changed since "
                                    f"{artifact.stage}/{artifact.name} used it (manifest hash differs)")
            try:
                return self.lineage(parent, stage)
            except _NotAncestor:  # a changed or missing ancestor is an error, not a miss
                continue
        raise _NotAncestor(f"{artifact.task}/{artifact.stage}/{artifact.name} was not made from any "
                           f"{stage} artifact")

    def ancestors(self, artifact: Artifact) -> list[Artifact]:
        """Every version ``artifact`` was (transitively) made from, then itself: inputs
        before the versions that read them (the recipe, in the order it ran).

        Raises:
            ArtifactError: an ancestor version was removed.
        """
        seen: dict[str, Artifact] = {}

        def visit(art: Artifact) -> None:
            for name, ref in art.manifest.get("inputs", {}).items():
                parent = (self.get(*name.split("/")) if name.count("/") == 2  # TASK/STAGE/vN
                          else self.get(art.task, name, ref["version"]))
                if parent.label not in seen:
                    visit(parent)
            seen.setdefault(art.label, art)

        visit(artifact)
        return list(seen.values())

    def tasks(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []

    def staging_dirs(self, task: str, stage: str) -> list[Path]:
        """Leftover in-progress or interrupted runs (hidden, never listed as versions)."""
        d = self.stage_dir(task, stage)
        return sorted(d.glob(".staging-*")) if d.is_dir() else []

    def checkpoint_dir(self, task: str, stage: str, key: str) -> Path:
        """Where the run ``key`` (a fingerprint prefix) keeps its checkpoints."""
        return self.stage_dir(task, stage) / f".checkpoints-{key}"

    @contextmanager
    def staging(self, task: str, stage: str, key: str | None = None) -> Iterator[Path]:
        """A fresh, empty hidden staging directory; removed if the block raises.

        Args:
            key: name it ``.staging-<key>`` (one per run fingerprint), emptying
                what a killed earlier run of the same key left there; None: a
                random name.
        """
        d = self.stage_dir(task, stage)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".staging-{key or uuid.uuid4().hex[:12]}"
        if key is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def publish(self, staging: Path, task: str, stage: str, manifest: dict[str, Any]) -> Artifact:
        """Hash the staged files, write the manifest last, and rename atomically.

        ``manifest`` gets ``schema``, ``version``, ``status`` and ``outputs``
        (relpath -> sha256 and bytes) filled in here.

        Returns:
            The new complete :class:`Artifact`.
        """
        outputs = {}
        for p in sorted(staging.rglob("*")):
            if p.is_file() and p.name != MANIFEST:
                rel = p.relative_to(staging).as_posix()
                outputs[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        d = self.stage_dir(task, stage)
        counter = d / _LAST_VERSION
        while True:
            latest = self.latest(task, stage)
            # a version number is never reused, even if a directory was deleted by hand:
            # the highest number ever published is also kept in a hidden file
            taken = [int(m.group(1)) for c in d.iterdir() if (m := VERSION_RE.match(c.name))]
            try:
                taken.append(int(counter.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass
            version = max([0, *taken, latest.version if latest else 0]) + 1
            doc = {"schema": SCHEMA, "task": task, "stage": stage, "version": f"v{version}",
                   "status": "complete", **manifest, "outputs": outputs}
            tmp_manifest = staging / (MANIFEST + ".tmp")
            tmp_manifest.write_text(jsonio.dumps(doc, indent=2) + "\n", encoding="utf-8")
            with open(tmp_manifest, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp_manifest, staging / MANIFEST)
            (staging / SEAL).write_text(sha256_file(staging / MANIFEST) + "\n", encoding="utf-8")
            _follow_umask(staging)
            if os.environ.get(HOLD_PUBLISH_ENV):  # test hook, see the module docstring
                _hold(Path(os.environ[HOLD_PUBLISH_ENV]))
            try:
                with _signals_deferred():  # a version appears whole, with its counter
                    os.rename(staging, d / f"v{version}")
            except OSError:
                if (d / f"v{version}").exists():  # a concurrent run took that number
                    continue
                raise
            try:
                version_seen = max(version, int(counter.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                version_seen = version
            tmp_counter = d / f"{_LAST_VERSION}.tmp-{uuid.uuid4().hex[:12]}"
            tmp_counter.write_text(str(version_seen), encoding="utf-8")
            os.replace(tmp_counter, counter)
            return Artifact(d / f"v{version}", task, stage, version)


def recovery_hint(label: str) -> str:
    """How to recover from a corrupted ``task/stage/vN``."""
    task, stage, version = label.split("/")
    pin = f" or pin another version with --from {stage}=vN" if task != "GLUE" else ""
    return (f"rerun the stage that made it with `theseus {stage} --task {task} --force` "
            f"(publishes a new version){pin}; `theseus verify` checks the whole workspace")
