"""Checks that a published artifact is what its manifest says, and is fit to publish.

Reading (Kedro / DVC style): before a stage uses an input artifact, every
file the manifest lists is checked present, of the recorded size and sha256;
the manifest itself is checked against the seal written beside it at publish
(``.manifest.sha256``), and every ancestor in the lineage is checked the same
way and against the manifest hash its child recorded. Hashing is cheap on the
second read: a verified sha256 is cached by (path, size, mtime, ctime) in
``artifacts/.hash-cache.json``; any write to a file changes its ctime, so a
changed file is always re-hashed.

Publishing: every tensor of every ``*.safetensors`` file in a staged version is
checked finite (:func:`check_finite_weights`) before the version appears.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from theseus_cli.errors import ArtifactError, IntegrityError, TrainingDivergedError
from theseus_cli.store.artifacts import (
    MANIFEST,
    SEAL,
    VERSION_RE,
    Artifact,
    ArtifactStore,
    recovery_hint,
    sha256_file,
)

CACHE_NAME = ".hash-cache.json"


class HashCache:
    """sha256 of files keyed by (path, size, mtime_ns, ctime_ns), kept on disk.

    Args:
        path: the cache file (``artifacts/.hash-cache.json``); None keeps it in memory.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, list] = {}
        self._dirty = False
        if path is not None and path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                self._entries = doc if isinstance(doc, dict) else {}
            except (OSError, ValueError):
                self._entries = {}

    def sha256(self, file: Path) -> str:
        """The file's sha256, from the cache when its size and times are unchanged.

        Raises:
            OSError: the file cannot be read.
        """
        st = file.stat()
        key = str(file.resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        hit = self._entries.get(key)
        if isinstance(hit, list) and len(hit) == 4 and hit[:3] == stamp:
            return hit[3]
        digest = sha256_file(file)
        self._entries[key] = [*stamp, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        """Write the cache atomically (best effort: a read-only workspace just re-hashes)."""
        if self.path is None or not self._dirty:
            return
        tmp = self.path.with_name(f"{self.path.name}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            tmp.write_text(json.dumps(self._entries), encoding="utf-8")
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError:
            tmp.unlink(missing_ok=True)


@dataclass
class Report:
    """What :func:`check_artifact` found for one version (empty ``problems``: intact)."""

    label: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_artifact(art: Artifact, cache: HashCache) -> Report:
    """Compare one version's files with its manifest, and the manifest with its seal.

    Returns:
        A :class:`Report` whose ``problems`` name each bad file and what differs.
    """
    report = Report(f"{art.task}/{art.stage}/{art.name}")
    try:
        raw = art.manifest_path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as e:
        report.problems.append(f"manifest.json is unreadable ({type(e).__name__}: {e})")
        return report
    seal = art.path / SEAL
    if seal.is_file():
        if seal.read_text(encoding="utf-8").strip() != sha256_file(art.manifest_path):
            report.problems.append("manifest.json was edited: its sha256 differs from the seal "
                                   f"({SEAL}) written when the version was published")
    elif manifest.get("schema", 1) >= 2:
        report.problems.append(f"the manifest seal {SEAL} is missing")
    outputs = manifest.get("outputs")
    if not isinstance(outputs, dict):
        report.problems.append("manifest.json has no 'outputs' table")
        return report
    report.problems += _unlisted(art, set(outputs))
    for rel, meta in sorted(outputs.items()):
        path = art.path / rel
        if not path.is_file():
            report.problems.append(f"{rel}: missing (the manifest lists it)")
            continue
        size = path.stat().st_size
        if isinstance(meta, dict) and meta.get("bytes") is not None and size != meta["bytes"]:
            report.problems.append(f"{rel}: {size} bytes, the manifest records {meta['bytes']}")
            continue
        try:
            digest = cache.sha256(path)
        except OSError as e:
            report.problems.append(f"{rel}: unreadable ({e.strerror or e})")
            continue
        if not isinstance(meta, dict) or digest != meta.get("sha256"):
            report.problems.append(f"{rel}: sha256 differs from the manifest "
                                   "(the file changed after it was published)")
    return report


def _unlisted(art: Artifact, listed: set[str]) -> list[str]:
    """Files inside the version that its manifest does not list (added after publishing),
    and symbolic links leading out of the workspace."""
    workspace = art.path.parents[3].resolve()  # WORKSPACE/artifacts/TASK/STAGE/vN
    problems = []
    for p in sorted(art.path.rglob("*")):
        rel = p.relative_to(art.path).as_posix()
        if p.is_symlink():
            target = p.resolve()
            if not target.is_relative_to(workspace):
                problems.append(f"{rel}: a symbolic link to {str(target)!r}, outside the "
                                "workspace (a published version holds its own files)")
                continue
        if p.is_file() and rel not in listed and rel not in (MANIFEST, SEAL):
            problems.append(f"{rel}: not listed in the manifest (added after the version "
                            "was published)")
    return problems


def lineage_reports(store: ArtifactStore, art: Artifact, cache: HashCache,
                    seen: dict[str, Report] | None = None) -> list[Report]:
    """Reports for every ancestor ``art`` was made from (deepest first), then ``art``.

    An ancestor whose version is gone, or whose manifest hash differs from the
    one its child recorded, is also a problem of the child; a corrupted
    ancestor comes first, so the first bad report names the root cause.
    """
    seen = {} if seen is None else seen
    if f"{art.task}/{art.stage}/{art.name}" in seen:
        return []
    report = check_artifact(art, cache)
    seen[report.label] = report
    if report.problems and report.problems[0].startswith("manifest.json is unreadable"):
        return [report]
    out: list[Report] = []
    for name, ref in (art.manifest.get("inputs") or {}).items():
        parts = name.split("/")  # "stage", or "TASK/stage[/vN]" for cross-task artifacts
        task, stage = (parts[0], parts[1]) if len(parts) > 1 else (art.task, name)
        version = ref.get("version") if isinstance(ref, dict) else ref
        try:
            parent = store.get(task, stage, version)
        except (ArtifactError, TypeError):
            report.problems.append(f"input {task}/{stage}/{version} it was made from no longer exists")
            continue
        out += lineage_reports(store, parent, cache, seen)
        if cache.sha256(parent.manifest_path) != ref.get("manifest_sha256"):
            report.problems.append(f"input {task}/{stage}/{parent.name} changed after this version "
                                   "was made from it (its manifest hash differs)")
    return [*out, report]


def verify_lineage(store: ArtifactStore, art: Artifact, cache: HashCache | None = None) -> None:
    """Raise unless ``art`` and all its ancestors match their manifests.

    Raises:
        IntegrityError: names the first corrupted version, its bad files and
            how to recover.
    """
    own = cache is None
    cache = cache or HashCache(store.root / CACHE_NAME)
    try:
        bad = [r for r in lineage_reports(store, art, cache) if not r.ok]
    finally:
        if own:
            cache.save()
    if bad:
        first = bad[0]
        via = "" if first.label == f"{art.task}/{art.stage}/{art.name}" else (
            f" (an ancestor of {art.task}/{art.stage}/{art.name})")
        raise IntegrityError(f"{first.label}{via} is corrupted: {'; '.join(first.problems)}. "
                             f"Nothing was read from it. To recover, {recovery_hint(first.label)}",
                             problems=[f"{r.label}: {p}" for r in bad for p in r.problems])


def check_finite_weights(root: Path) -> None:
    """Check every tensor of every ``*.safetensors`` under ``root`` is finite.

    Raises:
        TrainingDivergedError: names the file, the first bad tensor and how many
            of its values are NaN / infinite.
    """
    import torch
    from safetensors import safe_open

    for file in sorted(root.rglob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():
                t = f.get_tensor(name)
                if not t.is_floating_point():
                    continue
                bad = (~torch.isfinite(t)).sum().item()
                if bad:
                    nan = torch.isnan(t).sum().item()
                    raise TrainingDivergedError(
                        f"{file.relative_to(root)}: tensor {name!r} has {bad} non-finite values "
                        f"({nan} NaN, {bad - nan} infinite) of {t.numel()}; the model diverged, "
                        "so nothing was published. Rerun with a lower --learning-rate")


def verify_workspace(store: ArtifactStore) -> list[Report]:
    """Check every version of every task and stage: files, seal and inputs of each complete
    one, and a version directory without its manifest (deleted by hand) as corrupted."""
    cache = HashCache(store.root / CACHE_NAME)
    reports: dict[str, Report] = {}
    try:
        for task in store.tasks():
            stage_root = store.root / task
            for stage_dir in sorted(p for p in stage_root.iterdir() if p.is_dir()):
                for orphan in sorted(p for p in stage_dir.iterdir() if p.is_dir()
                                     and VERSION_RE.match(p.name)
                                     and not (p / MANIFEST).exists()):
                    label = f"{task}/{stage_dir.name}/{orphan.name}"
                    reports[label] = Report(label, [
                        f"{MANIFEST} is missing, so the version cannot be read or trusted "
                        f"(it was deleted after publishing); {recovery_hint(label)}"])
                for art in store.versions(task, stage_dir.name):
                    label = f"{task}/{stage_dir.name}/{art.name}"
                    if label in reports:
                        continue
                    for r in lineage_reports(store, art, cache, {}):
                        if r.label == label:
                            reports[label] = r
    finally:
        cache.save()
    return list(reports.values())


def problems_by_version(store: ArtifactStore, task: str, stage: str) -> dict[str, list[str]]:
    """``version -> problems`` for the corrupted versions of one stage (for ``status``)."""
    cache = HashCache(store.root / CACHE_NAME)
    try:
        return {a.name: r.problems for a in store.versions(task, stage)
                if not (r := check_artifact(a, cache)).ok}
    finally:
        cache.save()
