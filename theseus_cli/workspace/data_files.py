"""The content hashes of a user's task's data files, as DVC records its inputs: part of
every stage's fingerprint (an edited ``--train`` file makes the stages run again) and of
its manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from theseus_cli.errors import DataError
from theseus_cli.store.integrity import HashCache

#: the data-file settings of a user's task (in the order manifests list them) -> the
#: split name ``UserTask.path`` and ``UserTask.hub`` read them as
SPLITS = {"train": "train", "validation": "dev", "test": "test"}


def data_file_hashes(config: Any, task: str, cache_path: Path | None = None
                     ) -> dict[str, dict[str, str]]:
    """``split -> {"path", "sha256"}`` for each data file of the user's task ``task``
    (``path`` as theseus.yaml writes it). A saved-dataset directory hashes the names and
    sha256 of its files; a Hub dataset (``hub:...``) records ``"sha256": "hub"``, its
    revision being the Hub's business. A GLUE task: {} (its files are the benchmark's).

    Args:
        config: the workspace configuration (its ``user_tasks``).
        cache_path: the hash cache file (files unchanged in size and times are not read
            again); None: no cache.

    Raises:
        DataError: a data file named in theseus.yaml cannot be read (the file named).
    """
    definition = config.user_tasks.get(task)
    if definition is None:
        return {}  # a GLUE task, or the pseudo-task GLUE of the cross-task table
    cache = HashCache(cache_path)
    out: dict[str, dict[str, str]] = {}
    try:
        for split, read_as in SPLITS.items():
            given = getattr(definition.settings, split)
            if not given:
                continue
            if definition.hub(read_as):
                out[split] = {"path": str(given), "sha256": "hub"}
                continue
            path = definition.path(read_as)  # resolved against the workspace
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
