"""Run a stage: resolve its params and inputs, run upstream stages, publish.

A stage reads the latest complete version of each input (or a pinned one).
A missing input runs its upstream stage first and says so, unless
``no_upstream``. A fingerprint (hash of params, configuration, runtime and
input manifest hashes) decides, like a lockfile, whether the stage must rerun.

One run at a time: a run holds ``artifacts/<task>/<stage>/.lock`` (:mod:`theseus_cli.store.lock`)
from start to publish. Resume: the run's staging directory and its checkpoints
(:mod:`theseus_cli.store.checkpoint`) are named after the fingerprint, so rerunning the same
command after a kill continues from the last checkpoint; ``restart`` discards it. With
several processes only the main one locks, prints, writes and publishes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from theseus_cli.errors import ArtifactError, LockError, PlotError, WorkspaceError
from theseus_cli.plots import draw_stage_curves
from theseus_cli.plugin import StageContext, registry
from theseus_cli.plugin import params as P
from theseus_cli.store.artifacts import Artifact, ArtifactStore
from theseus_cli.store.checkpoint import Checkpointer
from theseus_cli.store.integrity import (
    CACHE_NAME,
    HashCache,
    check_artifact,
    check_finite_weights,
    verify_lineage,
)
from theseus_cli.store.lock import LOCK_NAME, StageLock, describe_holder
from theseus_cli.train.runlog import RunLog
from theseus_cli.train.runtime import Runtime
from theseus_cli.workspace.config import TRACKING_DIR, WorkspaceConfig
from theseus_cli.workspace.data_files import data_file_hashes
from theseus_cli.workspace.preflight import check_command
from theseus_cli.workspace.run_facts import (
    comparable_data,
    is_main_process,
    library_versions,
    selected_plugins,
    world_size,
)
from theseus_cli.workspace.stage_services import CoreStageServices

#: errno values of a stage directory that cannot be written (permissions, read-only
#: filesystem, disk full, a file where a directory should be, a directory where a file should be)
_FS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
              errno.ENOTDIR, errno.EEXIST, errno.EISDIR}

#: stage params added after fingerprints existed, left out at the value that behaves as before
_ADDED_AT_DEFAULT = {"patience": None}


@contextmanager
def _private_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="theseus-rank-") as d:
        yield Path(d)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Pipeline:
    """Runs stages of one workspace: ``config``, its loaded configuration (CLI data and
    runtime overrides already applied); ``console``, where messages and progress go."""

    def __init__(self, config: WorkspaceConfig, console: Console | None = None):
        self.config = config
        self.console = console or Console()
        self.store = ArtifactStore(config.artifacts_dir)
        self._runtime: Runtime | None = None
        self._said: set[str] = set()  # what say(..., once=True) printed

    @property
    def runtime(self) -> Runtime:
        """The shared runtime, created on first use (one per pipeline)."""
        if self._runtime is None:
            r = self.config.runtime
            self._runtime = Runtime(r.device, r.precision, r.seed, r.gradient_accumulation_steps,
                                    r.compile, r.report_to, self.config.root / TRACKING_DIR,
                                    r.threads)
            if warning := self._runtime.cpu_contention():
                self.say(f"[yellow]warning: {warning}[/]")
        return self._runtime

    def say(self, message: str, once: bool = False) -> None:
        """Print on the main process only; ``once``: unless this pipeline printed it already
        (a choice the pre-flight check and the run both make)."""
        if once and message in self._said:
            return
        self._said.add(message)
        if is_main_process():
            self.console.print(message)

    def resolve_inputs(self, stage: str, task: str, pins: dict[str, str],
                       no_upstream: bool, params: Any = None) -> dict[str, Artifact]:
        """Input artifacts of ``stage``: pinned, else latest, else run upstream.

        Raises:
            ArtifactError: a pinned version does not exist, or an input is
                missing and ``no_upstream`` is set.
        """
        cls = registry.stage(stage)
        names = (cls().inputs_for(params, self.store, task) if params is not None
                 else cls.inputs)
        unknown = sorted(set(pins) - set(names))
        if unknown:
            raise ArtifactError(f"--from {unknown[0]}=...: {stage} does not read {unknown[0]}; "
                                f"its inputs: {', '.join(names) or '(none)'}")
        inputs = {}
        for name in names:
            art = self.find_input(stage, task, name, pins, no_upstream, params)
            if art is None:
                self.say(f"[yellow]{stage} needs {name} for {task}, which has no complete "
                         f"version: running {name} first[/]")
                art = self.run(name, task, preflight=False)
            verify_lineage(self.store, art)  # files, manifest seal, ancestors: before any use
            inputs[name] = art
        return inputs

    def find_input(self, stage: str, task: str, name: str, pins: dict[str, str],
                   no_upstream: bool, params: Any = None) -> Artifact | None:
        """The version of input ``name`` a run of ``stage`` reads: the pinned one, else
        :meth:`latest_input`; None when it must run first.

        Raises:
            ArtifactError: the pinned version does not exist, or there is none and
                ``no_upstream`` forbids running it.
        """
        if name in pins:
            return self.store.get(task, name, pins[name])
        if name.count("/") == 2:  # a full label, TASK/STAGE/vN: that version
            return self.store.get(*name.split("/"))
        art = self.latest_input(task, name, stage, params)
        if art is None and no_upstream:
            raise ArtifactError(
                f"{stage} needs a complete {name} artifact for {task} and none exists; "
                f"run `theseus {name}` first, or drop --no-upstream to run it automatically")
        return art

    def latest_input(self, task: str, stage: str, reader: str | None = None,
                     params: Any = None) -> Artifact | None:
        """The version of ``stage`` a run of ``reader`` reads: the reader's pick (``Stage.
        choose_input``: export's), else among those it accepts (``accepts_input``) the latest
        made with this run's seed (each seed's chain its own: replace of seed 43 -> its
        finetune-successor); for a stage ``shared_across_seeds`` (the teacher), else the
        latest of any seed; None when there is none (the stage runs first, with this seed)."""
        seed = self.config.runtime.seed
        accepted = []
        for art in self.store.versions(task, stage):
            m = art.manifest  # an unreadable manifest stops here (IntegrityError), loudly
            if reader is None or params is None or registry.stage(reader)().accepts_input(
                    stage, m, params):
                accepted.append((art, m.get("config", {}).get("runtime", {}).get("seed")))
        if reader is not None and params is not None and accepted and (chosen := registry.stage(
                reader)().choose_input(stage, [a for a, _ in accepted], self.store, params)):
            self.say(f"{reader} reads {chosen[0].label}: {chosen[1]}", once=True)
            return chosen[0]
        same = [a for a, s in accepted if s == seed]
        if same:
            return same[-1]
        if accepted and registry.stage(stage).shared_across_seeds:
            return accepted[-1][0]
        return None

    def same_run(self, task: str, stage: str, fp: str) -> Artifact | None:
        """The newest intact version published with fingerprint ``fp`` (the same params,
        configuration, seed and inputs), or None. A corrupted one is named and skipped,
        so the stage runs again and publishes a new version."""
        cache = HashCache(self.store.root / CACHE_NAME)
        try:
            for art in reversed(self.store.versions(task, stage)):
                try:
                    if art.manifest.get("fingerprint") != fp:
                        continue
                except ArtifactError:
                    continue
                report = check_artifact(art, cache)
                if report.ok:
                    return art
                self.say(f"[yellow]{art.label} is corrupted ({'; '.join(report.problems)}): "
                         f"running {stage} again to publish a new version[/]")
                return None
            return None
        finally:
            cache.save()

    def fingerprint(self, stage: str, task: str, params: Any,
                    inputs: dict[str, Artifact]) -> str:
        """sha256 over everything that determines a stage's result.

        Params declared with ``param(..., fingerprint=False)`` (checkpoint
        frequency) are left out; so are ``compile`` when off, the number of
        processes when 1 and ``data.selection`` when ``dev`` (with its
        ``holdout_fraction``), so older fingerprints stay valid. A user's task adds the
        sha256 of its data files (:func:`data_file_hashes`, as DVC does): an edited file makes
        every stage of the task run again.
        """
        kept = {f.name for f in dataclasses.fields(params) if f.metadata.get("fingerprint", True)}
        runtime = P.to_dict(self.config.runtime)
        if not runtime.get("compile"):
            runtime.pop("compile", None)
        runtime.pop("report_to", None)  # where metrics are also sent changes no result
        runtime.pop("threads", None)  # nor the thread count (float sums' last bits, at most)
        if world_size() > 1:
            runtime["num_processes"] = world_size()
        doc = {
            "stage": stage, "task": task,
            "params": {k: v for k, v in P.to_dict(params).items() if k in kept
                       and not (k in _ADDED_AT_DEFAULT and v == _ADDED_AT_DEFAULT[k])},
            "model": self.config.model,
            "data": comparable_data(P.to_dict(self.config.data)),
            "glue_dir": str(self.config.glue_dir()),
            "runtime": runtime,
            "inputs": {k: a.manifest_sha256 for k, a in sorted(inputs.items())},
        }
        files = data_file_hashes(self.config, task, self.store.root / CACHE_NAME)
        if files:
            doc["data_files"] = {split: f["sha256"] for split, f in files.items()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def run(self, stage: str, task: str | None = None, overrides: dict[str, Any] | None = None,
            plugin_overrides: dict[str, dict[str, Any]] | None = None,
            pins: dict[str, str] | None = None, no_upstream: bool = False,
            force: bool = False, restart: bool = False, preflight: bool = True) -> Artifact:
        """Run ``stage`` for ``task`` and publish a new version (or reuse an identical one).

        Args:
            overrides / plugin_overrides: CLI values (see ``WorkspaceConfig.stage_params``).
            pins: input stage name -> version (``--from``).
            no_upstream: a missing input is an error instead of running its stage.
            force: rerun even when the latest version has the same fingerprint.
            restart: discard this run's checkpoints instead of resuming from them
                (upstream stages run on the way still resume).
            preflight: first check everything the configuration tells, for this
                stage and the upstream stages it will run
                (:func:`theseus_cli.workspace.preflight.check_command`).

        Returns:
            The published (or reused) artifact.

        Raises:
            LockError: another process is running this stage for this task.
            IntegrityError: an input artifact does not match its manifest.
            TrainingDivergedError: training diverged, or a weight is not finite.
            WorkspaceError: the stage directory cannot be written.
            TheseusError subclasses; on any error nothing is published (the
                checkpoints stay, and the same command resumes from them).
        """
        task = task or self.config.task
        if preflight:
            check_command(self, stage, task, overrides, plugin_overrides, pins or {}, no_upstream)
            notes = getattr(self.config.task_definition(task), "notes", [])
            for note in dict.fromkeys(notes):  # found reading the data (repaired BIO tags)
                self.say(f"[yellow]warning: {note}[/]")
            notes.clear()
        try:
            with self.stage_lock(task, stage):
                return self._run_locked(stage, task, overrides, plugin_overrides, pins or {},
                                        no_upstream, force, restart)
        except OSError as e:
            if e.errno not in _FS_ERRNOS:
                raise
            raise WorkspaceError(
                f"cannot write {e.filename or self.store.stage_dir(task, stage)}: "
                f"{e.strerror}; {stage} needs a writable {self.store.stage_dir(task, stage)} "
                "(nothing was published)") from None

    @contextmanager
    def stage_lock(self, task: str, stage: str) -> Iterator[None]:
        """Hold the stage's lock (main process); every process fails if it is taken.

        Raises:
            LockError: held by a live process (named in the message).
        """
        label = f"{task}/{stage}"
        lock = StageLock(self.store.stage_dir(task, stage) / LOCK_NAME, label)
        error = None
        if is_main_process():
            try:
                lock.acquire()
            except LockError as e:
                error = str(e)
        if world_size() > 1:
            error = self.runtime.broadcast(error)
        if error is not None:
            lock.release()
            raise LockError(error)
        if lock.stale:
            self.say(f"[yellow]took over the lock of {label} left by "
                     f"{describe_holder(lock.stale)}, which is no longer running[/]")
        try:
            yield
        finally:
            lock.release()

    def _run_locked(self, stage: str, task: str, overrides: dict[str, Any] | None,
                    plugin_overrides: dict[str, dict[str, Any]] | None, pins: dict[str, str],
                    no_upstream: bool, force: bool, restart: bool) -> Artifact:
        cls = registry.stage(stage)
        params = self.config.stage_params(stage, overrides, plugin_overrides)
        inputs = self.resolve_inputs(stage, task, pins, no_upstream, params)
        fp = self.fingerprint(stage, task, params, inputs)
        key = fp[:16]
        main = is_main_process()
        checkpoints = Checkpointer(self.store.checkpoint_dir(task, stage, key), f"{task}/{stage}")
        same = None if force else self.same_run(task, stage, fp)
        if same is not None:
            if main:
                checkpoints.discard()  # left by a run killed right after it published
            self.say(f"{same.label} is up to date (same params and inputs); use --force to run "
                     "it again")
            if main:
                cls().on_up_to_date(same, params, self.say)
            return same
        runtime = self.runtime
        if restart and main and checkpoints.exists():
            self.say(f"--restart: discarding the checkpoints of {task}/{stage} in "
                     f"{checkpoints.root}")
            checkpoints.discard()
        runtime.wait()
        started, t0 = _now(), time.monotonic()
        if main:
            self.console.rule(f"[bold]{stage}[/] · {task}")
        # only the main process stages and publishes; the others write to a private temp dir
        staging = self.store.staging(task, stage, key) if main else _private_tmp()
        with staging as tmp:
            log = RunLog(tmp, self.console, enabled=main, tracker=runtime.track)
            runtime.start_tracking(f"{task}-{stage}-{key[:8]}", {
                "task": task, "stage": stage, "seed": runtime.seed, "model": self.config.model,
                **{k: v if isinstance(v, (int, float, str, bool)) else str(v)
                   for k, v in P.to_dict(params).items()}})
            ctx = StageContext(config=self.config, task=task, params=params, inputs=inputs,
                               out_dir=tmp, runtime=runtime, log=log, checkpoints=checkpoints,
                               plugins=selected_plugins(params), services=CoreStageServices(),
                               stage=stage)
            runtime.seed_everything()  # e.g. a new classifier head's init is seeded too
            try:
                result = cls().run(ctx)
                runtime.track({f"final/{k}": v for k, v in result.metrics.items()})
            finally:
                runtime.end_tracking()
            seconds = time.monotonic() - t0
            if main:
                result.info["plots"] = self._draw_curves(tmp, f"{task} · {stage}")
            manifest = {
                "created_at": _now(),
                "fingerprint": fp,
                "params": P.to_dict(params),
                "config": {"model": self.config.model, "task": task,
                           "data": P.to_dict(self.config.data),
                           "runtime": runtime.describe()},
                "inputs": {k: {"version": a.name, "manifest_sha256": a.manifest_sha256}
                           for k, a in inputs.items()},
                "data_files": data_file_hashes(self.config, task, self.store.root / CACHE_NAME),
                "metrics": result.metrics,
                "info": result.info,
                "timings": {"started_at": started, "finished_at": _now(),
                            "seconds": round(seconds, 2)},
                "library_versions": library_versions(),
            }
            if main:
                check_finite_weights(tmp)  # never publish a diverged model
                art = self.store.publish(tmp, task, stage, manifest)
                checkpoints.discard()
        runtime.wait()
        if not main:
            return self.store.latest(task, stage)  # type: ignore[return-value]
        self.console.print(f"[green]published[/] {task}/{stage}/{art.name} in {seconds:.1f} s"
                           f" → {art.path}")
        return art

    def _draw_curves(self, out_dir: Path, title: str) -> list[str]:
        """Draw a run's training curves (:func:`theseus_cli.plots.draw_stage_curves`) into its
        staging directory; names of the files drawn. A failed plot is reported, never fatal."""
        try:
            drawn = draw_stage_curves(out_dir, title)
        except PlotError as e:
            self.say(f"[yellow]warning: {e}; published without it[/]")
            return []
        if drawn is None:
            return []
        self.say(f"plot: {drawn.name} (p, training loss and {self.config.data.selection_split} "
                 "score over optimizer steps)")
        return [drawn.name]
