"""Running a sweep: each trial runs (or reuses) its combination with every seed, the
objective is the median dev score, trials go on until the plan's number is finished,
and :func:`run_sweep` ties it together and publishes the sweep artifact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from theseus_cli.errors import TrainingDivergedError
from theseus_cli.store.artifacts import Artifact, ArtifactStore
from theseus_cli.sweep.plan import redacted_url
from theseus_cli.sweep.report import (
    best_json,
    best_of,
    print_summary,
    publish_sweep,
    summarize,
    trial_records,
)
from theseus_cli.sweep.space import (
    MAX_DUPLICATES,
    METRIC,
    ParamSpec,
    SweepPlan,
    combo_key,
    combo_text,
    split_combo,
)
from theseus_cli.sweep.study import (
    SweepState,
    host_id,
    is_finished,
    open_study,
    reap_stale,
    trials_to_retry,
    worker_identity,
)
from theseus_cli.workspace.config import WorkspaceConfig
from theseus_cli.workspace.pipeline import Pipeline


@dataclass
class SeedRun:
    """One (combination, seed) run: an artifact version of the stage."""

    seed: int
    artifact: str  # "MRPC/replace/v3"
    version: str
    manifest_sha256: str
    metrics: dict[str, Any]
    seconds: float  # the artifact's own wall time (manifest timings.seconds)
    reused: bool  # published earlier (same fingerprint) and not run again
    host: str
    workspace: str


class _Diverged(Exception):
    """A trial whose training diverged (or gave no finite score): a finished,
    failed trial, not run again on resume."""


def _fmt_seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _find_published(pipeline: Any, stage: str, task: str, params: Any) -> Artifact | None:
    """The intact version of ``stage`` this run would reuse (``Pipeline.same_run``: any
    version with the run's fingerprint, not only the latest), or None.

    Resolving the inputs runs a missing upstream stage, as the run itself would.
    """
    inputs = pipeline.resolve_inputs(stage, task, {}, False, params=params)
    return pipeline.same_run(task, stage, pipeline.fingerprint(stage, task, params, inputs))


def run_combination(state: SweepState, combo: dict[str, Any], seed: int) -> SeedRun:
    """Run (or reuse) ``combo`` with ``seed``: an ordinary :meth:`Pipeline.run` of the
    stage in a copy of the workspace configuration whose ``runtime.seed`` is ``seed``.

    A version with the same fingerprint published earlier (by a killed sweep,
    another trial, or by hand) is reused, and its manifest's metrics are read.

    Raises:
        TrainingDivergedError: the run diverged or gave no finite score.
        TheseusError: any other failure of the stage (nothing published).
    """
    plan = state.plan
    config = dataclasses.replace(state.config,
                                 runtime=dataclasses.replace(state.config.runtime, seed=seed))
    pipeline = Pipeline(config, state.console)
    overrides, plugin_overrides = split_combo(combo)
    params = config.stage_params(plan.stage, overrides, plugin_overrides)
    found = _find_published(pipeline, plan.stage, plan.task, params)
    if found is not None:
        art, reused = found, True
    else:
        before = {a.name for a in state.store.versions(plan.task, plan.stage)}
        art = pipeline.run(plan.stage, plan.task, overrides=overrides,
                           plugin_overrides=plugin_overrides)
        reused = art.name in before
    manifest = art.manifest
    metrics = manifest.get("metrics") or {}
    score = metrics.get(METRIC)
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        raise TrainingDivergedError(f"{art.label} has no finite dev {METRIC!r} "
                                    f"(metrics: {metrics})")
    return SeedRun(seed=seed, artifact=art.label, version=art.name,
                   manifest_sha256=art.manifest_sha256, metrics=metrics,
                   seconds=float((manifest.get("timings") or {}).get("seconds") or 0.0),
                   reused=reused, host=host_id(),
                   workspace=str(state.config.root))


def _suggest(trial: Any, p: ParamSpec) -> Any:
    if p.kind == "float":
        return trial.suggest_float(p.name, float(p.low), float(p.high), log=p.log)
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
    return trial.suggest_categorical(p.name, list(p.values))


def _objective(state: SweepState) -> Any:
    plan = state.plan

    def objective(trial: Any) -> float:
        import optuna

        trial.set_user_attr("worker", worker_identity())
        combo = {p.name: _suggest(trial, p) for p in plan.space}
        key = combo_key(combo)
        twin = next((t for t in trial.study.get_trials(deepcopy=False)
                     if t.number != trial.number and is_finished(t) and combo_key(t.params) == key), None)
        if twin is not None:  # a sampler proposing a finished combination: not a new trial
            state.duplicates += 1
            trial.set_user_attr("duplicate_of", twin.number)
            raise optuna.TrialPruned(f"{combo_text(combo)} already finished as trial "
                                     f"#{twin.number}")
        state.duplicates = 0
        overrides, plugin_overrides = split_combo(combo)
        state.config.stage_params(plan.stage, overrides, plugin_overrides)  # a sampled value
        t0, runs, trained = time.monotonic(), [], False
        head = f"trial {state.position}/{state.total}"
        for seed in plan.seeds:
            try:
                run = run_combination(state, combo, seed)
            except TrainingDivergedError as e:
                trial.set_user_attr("outcome", "diverged")
                trial.set_user_attr("error", str(e))
                trial.set_user_attr("runs", runs)
                state.console.print(f"[red]{head}: {combo_text(combo)} seed {seed} diverged: "
                                    f"{e}; the trial counts as failed[/]")
                raise _Diverged(str(e)) from None
            except BaseException as e:
                trial.set_user_attr("error", str(e) or type(e).__name__)
                trial.set_user_attr("runs", runs)
                raise
            trained = trained or not run.reused
            runs.append(dataclasses.asdict(run))
            trial.set_user_attr("runs", runs)
            how = (f"reused {run.artifact}: same fingerprint, not retrained" if run.reused else
                   f"{run.artifact}, trained in {run.seconds:.1f} s")
            state.console.print(f"[bold]{head}[/]: {combo_text(combo)} seed {seed} → "
                                f"{METRIC} [bold]{run.metrics[METRIC]:.4f}[/] ({how})")
        stats = summarize([r["metrics"][METRIC] for r in runs])
        wall = time.monotonic() - t0
        for k, v in stats.items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("wall_seconds", round(wall, 2))
        if trained:
            state.wall.append(wall)
        return stats["median"]

    return objective


def _progress(study: Any, state: SweepState, plan: SweepPlan) -> None:
    records, _ = trial_records(study, plan)
    done = len(records) + len({combo_key(t.params) for t in study.get_trials(deepcopy=False)
                               if is_finished(t) and t.state.name == "FAIL"
                               and (not plan.grid or combo_key(t.params) in
                                    {combo_key(c) for c in plan.grid})})
    best = best_of(records)
    left = max(0, plan.trials - done)
    per_trial = (statistics.fmean(state.wall) if state.wall else
                 statistics.fmean(sum(r["seconds"] for r in rec.runs) for rec in records)
                 if records else 0.0)
    line = f"{done}/{plan.trials} trials finished"
    if best is not None:
        line += (f"; best so far: trial #{best.number} ({combo_text(best.params)}) median "
                 f"{METRIC} {best.median:.4f} over {len(best.runs)} seed(s)")
    if left:
        line += (f"; about {_fmt_seconds(per_trial * left)} left ({left} trial(s) × "
                 f"{per_trial:.1f} s)")
    state.console.print(f"[cyan]{line}[/]")


def _run_trials(study: Any, state: SweepState) -> None:
    """Run trials until the plan's number of trials is finished (see module docstring)."""
    from optuna.trial import TrialState

    plan = state.plan
    objective = _objective(state)
    worker = {"worker": worker_identity()}
    grid_keys = [combo_key(c) for c in plan.grid]
    if plan.grid:
        finished = {combo_key(t.params) for t in study.get_trials(deepcopy=False) if is_finished(t)}
        skipped = [c for c in plan.grid if combo_key(c) in finished]
        if skipped:
            state.console.print(
                f"{len(skipped)} of {len(plan.grid)} combinations already finished in study "
                f"{plan.study}: skipped (" + "; ".join(combo_text(c) for c in skipped) + ")")
    while True:
        reap_stale(study, state)
        again = [] if plan.grid else trials_to_retry(study)
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if is_finished(t)
                    and (not plan.grid or combo_key(t.params) in grid_keys)]
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        if plan.grid:
            busy = {combo_key(t.params) for t in trials
                    if t.state in (TrialState.RUNNING, TrialState.WAITING)}
            done_keys = {combo_key(t.params) for t in finished}
            pending = [c for c in plan.grid if combo_key(c) not in done_keys | busy]
            if not pending and not waiting:
                running = [t for t in trials if t.state == TrialState.RUNNING]
                if running:
                    state.console.print(
                        f"[yellow]{len(running)} combination(s) are running in other processes "
                        "(trials " + ", ".join(f"#{t.number}" for t in running) + "); rerun this "
                        "command later to include them[/]")
                return
            if not waiting:
                study.enqueue_trial(pending[0], user_attrs=worker)
            state.position = len({combo_key(t.params) for t in finished}) + 1
        else:
            if len({combo_key(t.params) for t in finished}) >= plan.trials:
                return
            if state.duplicates >= MAX_DUPLICATES:
                state.console.print(
                    f"[yellow]the {plan.sampler} sampler proposed {state.duplicates} finished "
                    "combinations in a row: the search space looks exhausted; stopping with "
                    f"{len({combo_key(t.params) for t in finished})} trial(s)[/]")
                return
            for combo in again:
                study.enqueue_trial(combo, user_attrs=worker)
            if not waiting and not again:
                study.enqueue_trial({}, user_attrs=worker)
            state.position = len({combo_key(t.params) for t in finished}) + 1
        state.total = plan.trials
        study.optimize(objective, n_trials=1, catch=(_Diverged,), gc_after_trial=False,
                       show_progress_bar=False)
        if not state.duplicates:  # a pruned duplicate changed nothing
            _progress(study, state, plan)


@dataclass
class SweepResult:
    artifact: Artifact
    best: dict[str, Any]
    reused: bool


def run_sweep(config: WorkspaceConfig, plan: SweepPlan, console: Console) -> SweepResult:
    """Run (or resume) a planned sweep and publish its ``sweep`` artifact.

    Trials run in this process, one after the other; each (combination, seed)
    is a :meth:`Pipeline.run` of the stage (see the module docstring for
    resume). Progress, the best trial so far and an estimate of the time left
    (mean wall time of the trials that trained here × trials left, seconds)
    are printed after each trial.

    Raises:
        TheseusError subclasses from the stage (the trial is marked failed and
            the same command resumes), except a diverged training, which
            fails only its trial.
    """
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    study = open_study(plan)
    state = SweepState(plan=plan, config=config, console=console,
                   store=ArtifactStore(config.artifacts_dir))
    console.print(f"sweep {plan.stage} on {plan.task}: {' '.join(p.describe() for p in plan.space)}"
                  f" × seeds {', '.join(map(str, plan.seeds))}; sampler {plan.sampler}, "
                  f"{plan.trials} trial(s); study {plan.study} in {redacted_url(plan.storage)}",
                  highlight=False)
    _run_trials(study, state)
    art, reused = publish_sweep(study, state, started, t0)
    records, _ = trial_records(study, plan)
    best = best_of(records)
    assert best is not None  # publish_sweep raised otherwise
    print_summary(console, records, plan, best)
    if reused:
        console.print(f"{art.label} is up to date (the same trials); → {art.path}")
    else:
        console.print(f"[green]published[/] {art.label} → {art.path}")
    return SweepResult(artifact=art, best=best_json(best, plan), reused=reused)
