"""The content hashes of a user's task's data files, as DVC records its inputs: part of
every stage's fingerprint (an edited ``--train`` file makes the stages run again) and of
its manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from theseus_cli.data.hub_files import HUB_PREFIX
from theseus_cli.errors import DataError
from theseus_cli.store.integrity import HashCache

#: the data-file settings of a user's task, in the order manifests list them
SPLITS = ("train", "validation", "test")


def data_file_hashes(config: Any, task: str, cache_path: Path | None = None
                     ) -> dict[str, dict[str, str]]:
    """``split -> {"path", "sha256"}`` for each data file of the user's task ``task``
    (``path`` as theseus.yaml writes it). A saved-dataset directory hashes the names and
    sha256 of its files; a Hub dataset (``hub:...``) records ``"sha256": "hub"``, its
    revision being the Hub's business. A GLUE task: {} (its files are the benchmark's).

    Args:
        config: the workspace configuration (``task_definition``).
        cache_path: the hash cache file (files unchanged in size and times are not read
            again); None: no cache.

    Raises:
        DataError: a data file named in theseus.yaml cannot be read (the file named).
    """
    if task not in (getattr(config, "user_tasks", None) or {}):
        return {}  # a GLUE task, or the pseudo-task GLUE of the cross-task table
    definition = config.task_definition(task)
    settings, root = getattr(definition, "settings", None), getattr(definition, "root", None)
    if settings is None or root is None:
        return {}
    cache = HashCache(cache_path)
    out: dict[str, dict[str, str]] = {}
    try:
        for split in SPLITS:
            given = getattr(settings, split, None)
            if not given:
                continue
            if str(given).startswith(HUB_PREFIX):
                out[split] = {"path": str(given), "sha256": "hub"}
                continue
            path = (Path(root) / Path(str(given)).expanduser()).resolve()
            try:
                if path.is_dir():
                    inner = hashlib.sha256()
                    for f in sorted(p for p in path.rglob("*") if p.is_file()):
                        inner.update(f"{f.relative_to(path).as_posix()} {cache.sha256(f)}\n"
                                     .encode())
                    digest = inner.hexdigest()
                else:
                    digest = cache.sha256(path)
            except OSError as e:
                raise DataError(f"{task}: cannot read its {split} file {path}: "
                                f"{e.strerror or e}") from None
            out[split] = {"path": str(given), "sha256": digest}
    finally:
        cache.save()
    return out
