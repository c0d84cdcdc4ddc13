"""Check everything the configuration can tell before any stage of a command runs.

``theseus replace`` in a fresh workspace runs ``finetune-teacher`` first; a
successor layer count that cannot divide the predecessor's layers must fail
now, not after the teacher trained for twenty minutes. :func:`check_command`
plans the stages the command will run (upstream ones included), verifies the
input artifacts that already exist (:mod:`theseus_cli.store.integrity`), reads the
model config each stage will see (no weights), and runs the generic checks
(GLUE directory, model source, sequence length against the position
embeddings) and each stage's own :meth:`Stage.check`.
"""

from __future__ import annotations

import os
from typing import Any

from theseus_cli.data import GLUE_DIR_ENV, HUB_DATASET, resolve_glue_dir
from theseus_cli.data.glue import GlueTask, get_task
from theseus_cli.errors import ArtifactError, ConfigError, DataError
from theseus_cli.model.loading import (
    MODEL_DIR,
    hub_reachable,
    model_facts,
    resolve_model_source,
)
from theseus_cli.plugin import CheckContext, ModelFacts, registry
from theseus_cli.store.artifacts import Artifact
from theseus_cli.store.integrity import verify_lineage
from theseus_cli.train.runtime import check_trackers
from theseus_cli.workspace.config import TRACKING_DIR


def plan(pipeline: Any, stage: str, task: str, pins: dict[str, str],
         no_upstream: bool, params: Any = None) -> list[tuple[str, Artifact | None]]:
    """Stages the command will run, upstream first, each with the existing artifact
    its model comes from (None: the predecessor source, or an input that runs first).

    Existing inputs are verified against their manifests on the way.

    Raises:
        ArtifactError: a pinned version does not exist, or an input is missing
            with ``no_upstream``.
        IntegrityError: an existing input (or an ancestor) is corrupted.
    """
    cls = registry.stage(stage)
    chain: list[tuple[str, Artifact | None]] = []
    primary: Artifact | None = None
    names = (cls().inputs_for(params, pipeline.store, task) if params is not None
             else cls.inputs)
    for name in names:
        art = pipeline.find_input(stage, task, name, pins, no_upstream, params)
        if art is None:
            chain += plan(pipeline, name, task, {}, no_upstream)
            continue
        verify_lineage(pipeline.store, art)
        primary = art
    return [*chain, (stage, primary)]


def _model_artifact(store: Any, art: Artifact) -> Artifact | None:
    """The artifact in ``art``'s lineage (itself first) that holds ``model/config.json``."""
    if (art.path / MODEL_DIR / "config.json").is_file():
        return art
    for name, ref in (art.manifest.get("inputs") or {}).items():
        if "/" in name:
            continue
        try:
            found = _model_artifact(store, store.get(art.task, name, ref["version"]))
        except ArtifactError:
            continue
        if found is not None:
            return found
    return None


def _facts(pipeline: Any, source_art: Artifact | None, cache: dict[str, ModelFacts]) -> ModelFacts:
    found = _model_artifact(pipeline.store, source_art) if source_art is not None else None
    source = (str(found.path / MODEL_DIR) if found is not None
              else resolve_model_source(pipeline.config.model, pipeline.config.root))
    if source not in cache:
        cache[source] = model_facts(source)
        if found is None:
            cache[source].source = pipeline.config.model
    return cache[source]


def check_data_source(config: Any, task: str) -> None:
    """The GLUE directory (if one is set) and the task's folder in it exist; a user's task:
    its files exist, train's columns and labels read well (the label order is then known).

    Raises:
        DataError: names the path looked for and how to point at data.
    """
    definition = config.task_definition(task)
    if not isinstance(definition, GlueTask):
        for split in definition.splits:
            path = definition.path(split)
            if definition.hub(split) is None and not path.exists():
                raise DataError(f"task {task}: the {split} file {str(path)!r} does not exist; "
                                f"fix tasks.{task}.{'validation' if split == 'dev' else split} "
                                "in theseus.yaml")
        for split in definition.splits:  # columns, cells, labels (and notes: BIO repairs)
            definition.load(split)
        return
    root = resolve_glue_dir(config.glue_dir())
    if root is None:
        import os

        offline = os.environ.get("HF_DATASETS_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        if not offline and not hub_reachable():
            raise DataError(f"no {task} data: neither data.glue_dir (theseus.yaml, --glue-dir) nor "
                            f"${GLUE_DIR_ENV} is set, and the Hugging Face hub ({HUB_DATASET}) "
                            "is unreachable from here; point --glue-dir at a GLUE download "
                            "(set HF_DATASETS_OFFLINE=1 to use a cached hub copy)")
        return
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise DataError(f"GLUE directory {root} {what} (data.glue_dir in theseus.yaml, "
                        f"--glue-dir or ${GLUE_DIR_ENV}); point it at a folder in the original "
                        "GLUE TSV layout")
    folder = root / get_task(task).folder
    if not folder.is_dir():
        raise DataError(f"no {task} data: folder {folder} does not exist in the GLUE directory "
                        f"{root}; add the task's TSV files there or point --glue-dir elsewhere")


def check_sequence_length(config: Any, task: str, facts: ModelFacts) -> None:
    """``data.max_seq_length`` (or the task's default) fits the position embeddings.

    Raises:
        ConfigError: names the setting, the limit and the model.
    """
    if facts.max_positions is None:
        return
    length = config.data.max_seq_length or config.task_definition(task).max_seq_length
    if length > facts.max_positions:
        setting = (f"data.max_seq_length: {length}" if config.data.max_seq_length else
                   f"{task}'s default maximum sequence length {length} (data.max_seq_length: null)")
        raise ConfigError(f"{setting} exceeds the {facts.max_positions} positions of model "
                          f"{facts.source} (max_position_embeddings); set data.max_seq_length "
                          f"to at most {facts.max_positions} in theseus.yaml")


def check_tracking_dir(config: Any) -> None:
    """With trackers on (``--report-to``), their directory must be a directory or creatable.

    Raises:
        ConfigError: naming ``--report-to`` and the path that blocks it.
    """
    trackers = check_trackers(config.runtime.report_to)
    if not trackers:
        return
    where = config.root / TRACKING_DIR
    blocker = where
    while not blocker.exists() and blocker != blocker.parent:
        blocker = blocker.parent
    if not blocker.is_dir():
        raise ConfigError(
            f"--report-to {','.join(trackers)}: the trackers write to {str(where)!r}, but "
            f"{str(blocker)!r} is a file; move it away, or run with --report-to none")
    if not os.access(blocker, os.W_OK | os.X_OK):
        raise ConfigError(f"--report-to {','.join(trackers)}: {str(blocker)!r} is not "
                          f"writable, so {str(where)!r} cannot be written; fix its "
                          "permissions, or run with --report-to none")


def check_command(pipeline: Any, stage: str, task: str, overrides: dict[str, Any] | None,
                  plugin_overrides: dict[str, dict[str, Any]] | None, pins: dict[str, str],
                  no_upstream: bool) -> None:
    """Run every check that needs no training before ``stage`` (and its upstream) run.

    Raises:
        ConfigError / ModelSourceError / DataError / ArtifactError / IntegrityError:
            the first problem found, before any work.
    """
    config = pipeline.config
    check_data_source(config, task)
    check_tracking_dir(config)
    given = frozenset(k for k, v in (overrides or {}).items() if v is not None)
    facts_cache: dict[str, ModelFacts] = {}
    top_params = config.stage_params(stage, overrides, plugin_overrides)
    for name, source_art in plan(pipeline, stage, task, pins, no_upstream, top_params):
        top = name == stage
        params = config.stage_params(name, overrides if top else None,
                                     plugin_overrides if top else None)
        facts = _facts(pipeline, source_art, facts_cache)
        check_sequence_length(config, task, facts)
        ctx = CheckContext(config=config, task=task, stage=name, params=params, model=facts,
                           given=given if top else frozenset())
        try:
            registry.stage(name)().check(ctx)
        except ConfigError as e:
            if top:
                raise
            raise ConfigError(f"{name} (run first, for {stage}): {e}") from None
