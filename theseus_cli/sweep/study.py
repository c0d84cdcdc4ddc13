"""The Optuna study of a sweep: opening it (and checking it was made for the same
sweep), the state of a running sweep, and which trials are finished, stale (left
RUNNING by a dead process) or to be retried."""

from __future__ import annotations

import json
import os
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from theseus_cli.errors import ConfigError, TheseusError
from theseus_cli.store import jsonio
from theseus_cli.store.artifacts import ArtifactStore
from theseus_cli.sweep.plan import redacted_url
from theseus_cli.sweep.space import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    STORAGE_FORMS,
    ParamSpec,
    SweepPlan,
    combo_key,
    combo_text,
)
from theseus_cli.workspace.config import WorkspaceConfig


def _proc_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a process, to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def host_id() -> str:
    """This machine: host name and kernel boot id (two containers may share a name)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = ""
    return f"{socket.gethostname()}" + (f"/{boot}" if boot else "")


def worker_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": host_id(), "pid": pid, "pid_start": _proc_start(pid)}


def _alive(worker: dict[str, Any] | None) -> bool | None:
    """Whether the process that ran a trial still runs: True / False on this host,
    None when unknown (another host: Optuna's heartbeat decides)."""
    if not worker or worker.get("host") != host_id():
        return None
    pid = int(worker.get("pid", 0))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _proc_start(pid)
    return not (start is not None and worker.get("pid_start") not in (None, start))


@dataclass
class SweepState:
    plan: SweepPlan
    config: WorkspaceConfig
    console: Console
    store: ArtifactStore
    wall: list[float] = field(default_factory=list)  # seconds of trials that trained something
    duplicates: int = 0  # consecutive sampled combinations that had already finished
    position: int = 0
    total: int = 0


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - a declared dependency
        raise TheseusError("theseus sweep needs Optuna: pip install 'optuna>=3.5'") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_study(plan: SweepPlan) -> Any:
    """Create or load the plan's Optuna study (direction maximize) and check that an
    existing one was made for the same search space and seeds.

    Raises:
        ConfigError: the storage cannot be opened, or the study named with
            ``--study`` was made for another search space.
    """
    from sqlalchemy.exc import SQLAlchemyError

    optuna = _import_optuna()
    try:
        storage = optuna.storages.RDBStorage(plan.storage, heartbeat_interval=HEARTBEAT_SECONDS,
                                             grace_period=GRACE_SECONDS)
    except (ImportError, ValueError, SQLAlchemyError) as e:  # no driver, bad URL, no server
        raise ConfigError(f"--storage {redacted_url(plan.storage)}: cannot open it ({e}); accepted: "
                          "an SQLAlchemy URL Optuna can use, e.g. "
                          f"{', '.join(STORAGE_FORMS)}") from None
    if plan.sampler == "grid":
        sampler = optuna.samplers.GridSampler({p.name: list(p.values) for p in plan.space},
                                              seed=plan.seeds[0])
    else:
        # a resumed sweep must not replay the suggestions of the killed one
        n = 0
        try:
            n = len(optuna.load_study(study_name=plan.study, storage=storage).trials)
        except KeyError:
            pass
        seed = plan.seeds[0] + n
        sampler = (optuna.samplers.RandomSampler(seed=seed) if plan.sampler == "random"
                   else optuna.samplers.TPESampler(seed=seed))
    study = optuna.create_study(storage=storage, study_name=plan.study, direction="maximize",
                                sampler=sampler, load_if_exists=True)
    ident = {"stage": plan.stage, "task": plan.task, "space": plan.space_json(),
             "seeds": list(plan.seeds), "sampler": plan.sampler}
    recorded = study.user_attrs.get("sweep")
    if recorded is None:
        study.set_user_attr("sweep", ident)
    elif json.dumps(recorded, sort_keys=True) != json.dumps(jsonio.clean(ident), sort_keys=True):
        raise ConfigError(
            f"--study {plan.study}: that study was made for another sweep "
            f"({recorded.get('stage')} on {recorded.get('task')}, "
            + " ".join(ParamSpec(**{k: (tuple(v) if k == "values" else v)
                                    for k, v in s.items()}).describe()
                       for s in recorded.get("space", []))
            + f", seeds {recorded.get('seeds')}, sampler {recorded.get('sampler')}); "
            "give the same --param/--seeds/--sampler, or another --study name")
    return study


def reap_stale(study: Any, state: SweepState) -> None:
    """Mark trials left RUNNING by a dead process on this host FAIL (their
    combinations then run again, see :func:`trials_to_retry`)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if _alive(worker) is not False:
            continue
        note = (f"left RUNNING by pid {worker['pid']} on {worker['host']}, which is no longer "
                "running")
        try:
            study._storage.set_trial_user_attr(t._trial_id, "stale", note)
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another process failed it first
            continue
        state.console.print(f"[yellow]trial #{t.number} ({combo_text(t.params)}) was {note}: "
                            "marked failed; its combination runs again (finished seeds are "
                            "reused, an interrupted one resumes from its checkpoint)[/]")


def trials_to_retry(study: Any) -> list[dict[str, Any]]:
    """Random/TPE: the combinations of failed trials (killed, interrupted, a stage
    error; not diverged) that did not finish since and were not retried yet; each is
    retried once (the study's ``retried`` attribute lists the trials)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    settled = {combo_key(t.params) for t in trials if is_finished(t) or t.state in (
        TrialState.RUNNING, TrialState.WAITING)}
    retried = list(study.user_attrs.get("retried") or [])
    again = []
    for t in trials:
        if (t.state == TrialState.FAIL and not is_finished(t) and t.number not in retried
                and t.params and combo_key(t.params) not in settled):
            again.append(dict(t.params))
            settled.add(combo_key(t.params))
            retried.append(t.number)
    if again:
        study.set_user_attr("retried", retried)
    return again


def is_finished(t: Any) -> bool:
    """COMPLETE, or failed because training diverged (deterministic: not retried)."""
    from optuna.trial import TrialState

    return t.state == TrialState.COMPLETE or (
        t.state == TrialState.FAIL and t.user_attrs.get("outcome") == "diverged")
