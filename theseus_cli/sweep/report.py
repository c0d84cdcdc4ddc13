"""What a sweep reports: its finished trials read back from the study, the best one,
the trials table (``trials.md``, the terminal), ``best.json``, ``command.txt``, and
the published ``sweep`` artifact."""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from theseus_cli.errors import IntegrityError, TheseusError
from theseus_cli.plugin import registry
from theseus_cli.store import jsonio
from theseus_cli.store.artifacts import Artifact, ArtifactStore
from theseus_cli.sweep.plan import redacted_url
from theseus_cli.sweep.space import (
    METRIC,
    SWEEP_STAGE,
    SweepPlan,
    combo_key,
    combo_text,
    command_line,
    show_value,
    split_combo,
)
from theseus_cli.sweep.study import SweepState
from theseus_cli.tables import Column, fitted_table
from theseus_cli.workspace.config import split_name
from theseus_cli.workspace.run_facts import library_versions


@dataclass
class TrialRecord:
    """A finished trial read back from the study."""

    number: int
    state: str
    params: dict[str, Any]
    runs: list[dict[str, Any]]
    median: float | None = None
    mean: float | None = None
    std: float | None = None
    error: str | None = None
    wall_seconds: float | None = None

    @property
    def scores(self) -> list[float]:
        return [r["metrics"][METRIC] for r in self.runs]


def summarize(scores: list[float]) -> dict[str, float | None]:
    """``median``, ``mean`` and ``std`` (sample standard deviation, ddof = 1; None
    for one seed) of the per-seed dev scores: the paper's statistic is the median."""
    return {"median": statistics.median(scores), "mean": statistics.fmean(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else None}


def trial_records(study: Any, plan: SweepPlan) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """(finished trials, one per combination, in trial order; failed trials)."""
    from optuna.trial import TrialState

    done: dict[str, TrialRecord] = {}
    failed = []
    grid_keys = {combo_key(c) for c in plan.grid}
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        rec = TrialRecord(number=t.number, state=t.state.name, params=dict(t.params),
                          runs=list(t.user_attrs.get("runs") or []),
                          median=t.user_attrs.get("median"), mean=t.user_attrs.get("mean"),
                          std=t.user_attrs.get("std"),
                          error=t.user_attrs.get("error") or t.user_attrs.get("stale"),
                          wall_seconds=t.user_attrs.get("wall_seconds"))
        if plan.grid and combo_key(rec.params) not in grid_keys:
            continue
        if t.state == TrialState.COMPLETE and len(rec.runs) == len(plan.seeds):
            done.setdefault(combo_key(rec.params), rec)
        elif t.state == TrialState.FAIL:
            failed.append(rec)
    return list(done.values()), failed


def best_of(records: list[TrialRecord]) -> TrialRecord | None:
    """The best trial: highest median dev score over its seeds; ties go to the higher
    mean, then to the earlier trial."""
    if not records:
        return None
    return max(records, key=lambda r: (r.median, r.mean, -r.number))


# ------------------------------------------------------------------ publish
def _trial_json(rec: TrialRecord, plan: SweepPlan) -> dict[str, Any]:
    return {"trial": rec.number, "state": rec.state, "params": rec.params,
            "median": rec.median, "mean": rec.mean, "std": rec.std,
            "seeds": [r["seed"] for r in rec.runs], "runs": rec.runs,
            "wall_seconds": rec.wall_seconds, "error": rec.error,
            "commands": [command_line(plan.stage, plan.task, rec.params, r["seed"])
                         for r in rec.runs]}


def _metric_names(records: list[TrialRecord]) -> list[str]:
    names: list[str] = [METRIC]
    for rec in records:
        for r in rec.runs:
            for k, v in r["metrics"].items():
                if k not in names and isinstance(v, (int, float)) and not k.endswith("_parameters"):
                    names.append(k)
    return names


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def table_rows(records: list[TrialRecord], plan: SweepPlan) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the trials table: one row per (trial, seed)."""
    metrics = _metric_names(records)
    cols = ["trial #", *[p.name for p in plan.space], "seed", *metrics, "seconds", "artifact",
            "reused", "trial median", "trial mean", "trial std"]
    rows = []
    for rec in records:
        for r in rec.runs:
            rows.append([str(rec.number), *[show_value(rec.params.get(p.name)) for p in plan.space],
                         str(r["seed"]), *[_cell(r["metrics"].get(m)) for m in metrics],
                         f"{r['seconds']:.1f}", r["artifact"], "yes" if r["reused"] else "no",
                         _cell(rec.median), _cell(rec.mean), _cell(rec.std)])
    return cols, rows


def render_markdown(records: list[TrialRecord], failed: list[TrialRecord], plan: SweepPlan,
                    best: TrialRecord | None) -> str:
    """``trials.md``: every finished trial × seed with its dev metrics, wall time
    (seconds) and artifact version; then the failed trials and the best one."""
    cols, rows = table_rows(records, plan)
    lines = [f"# theseus sweep {plan.stage} on {plan.task} (study {plan.study})", "",
             (f"Search space: {' '.join(p.describe() for p in plan.space)}; seeds "
              f"{', '.join(map(str, plan.seeds))}; sampler {plan.sampler}. Objective: the "
              f"median over seeds of the {split_name(plan.select)} {METRIC!r} (the paper's per-task "
              "number, section 4.3), higher is better; std is the sample standard deviation."), "",
             "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if failed:
        lines += ["", "Failed trials:"]
        lines += [f"- trial #{f.number} ({combo_text(f.params)}): {f.error or 'failed'}"
                  for f in failed]
    if best is not None:
        lines += ["", f"Best: trial #{best.number} ({combo_text(best.params)}), median {METRIC} "
                  f"{best.median:.4f}, mean {best.mean:.4f}"
                  + (f" ± {best.std:.4f}" if best.std is not None else "")
                  + f" over {len(best.runs)} seed(s)."]
    return "\n".join(lines) + "\n"


def _downstream(stage: str) -> list[str]:
    return [n for n, c in registry.stages().items() if stage in c.inputs]


def best_json(best: TrialRecord, plan: SweepPlan) -> dict[str, Any]:
    """``best.json``: the selected configuration and its statistics over seeds."""
    overrides, plugin_overrides = split_combo(best.params)
    return {"trial": best.number, "select": plan.select, "statistic": "median over seeds",
            "metric": METRIC, "params": best.params, "overrides": overrides,
            "plugin_overrides": plugin_overrides, "median": best.median, "mean": best.mean,
            "std": best.std, "n_seeds": len(best.runs), "seeds": [r["seed"] for r in best.runs],
            "scores": best.scores, "artifacts": [r["artifact"] for r in best.runs],
            "commands": [command_line(plan.stage, plan.task, best.params, r["seed"])
                         for r in best.runs]}


def command_text(best: TrialRecord, plan: SweepPlan) -> str:
    """``command.txt``: the command lines that reproduce the best configuration, one
    per seed, and how to use its artifacts downstream without retraining."""
    lines = [(f"# best configuration of sweep {plan.study} (trial #{best.number}): median "
              f"{split_name(plan.select)} {METRIC} {best.median:.4f} over {len(best.runs)} seed(s); run "
              "from the workspace")]
    lines += [command_line(plan.stage, plan.task, best.params, r["seed"]) for r in best.runs]
    top = max(best.runs, key=lambda r: r["metrics"][METRIC])
    downstream = _downstream(plan.stage)
    if downstream:
        lines.append(f"# or continue from its best seed's artifact {top['artifact']} without "
                     "retraining, e.g.:")
    lines += [f"theseus {name} --task {plan.task} --from {plan.stage}={top['version']}"
              for name in downstream]
    return "\n".join(lines) + "\n"


def _local(store: ArtifactStore, run: dict[str, Any], plan: SweepPlan) -> Artifact | None:
    """The run's artifact in this workspace, if it is there with the recorded manifest."""
    try:
        art = store.get(plan.task, plan.stage, run["version"])
    except TheseusError:
        return None
    return art if art.manifest_sha256 == run["manifest_sha256"] else None


def publish_sweep(study: Any, state: SweepState, started: str, t0: float) -> tuple[Artifact, bool]:
    """Publish ``artifacts/<task>/sweep/vN`` (or reuse an identical earlier version).

    Returns:
        ``(artifact, reused)``.

    Raises:
        TheseusError: no trial finished (every one failed).
    """
    import optuna

    plan, store = state.plan, state.store
    records, failed = trial_records(study, plan)
    best = best_of(records)
    if best is None:
        why = "; ".join(f"trial #{f.number} ({combo_text(f.params)}): {f.error or 'failed'}"
                        for f in failed) or "none ran"
        raise TheseusError(f"no trial of study {plan.study} finished, nothing to select: {why}")
    trial_artifacts: dict[str, dict[str, Any]] = {}
    elsewhere = []
    for rec in records:
        for r in rec.runs:
            art = _local(store, r, plan)
            if art is None:
                elsewhere.append(f"{r['artifact']} ({r['host']}:{r['workspace']})")
                continue
            trial_artifacts[art.label] = {"version": art.name,
                                          "manifest_sha256": r["manifest_sha256"],
                                          "trial": rec.number, "seed": r["seed"]}
    top = max(best.runs, key=lambda r: r["metrics"][METRIC])
    best_art = _local(store, top, plan)
    inputs = ({f"{plan.task}/{plan.stage}": {"version": best_art.name,
                                             "manifest_sha256": top["manifest_sha256"]}}
              if best_art is not None else {})
    params = {"stage": plan.stage, "task": plan.task, "space": plan.space_json(),
              "seeds": list(plan.seeds), "sampler": plan.sampler, "trials": plan.trials,
              "study": plan.study, "storage": redacted_url(plan.storage), "select": plan.select,
              "metric": METRIC, "statistic": "median over seeds"}
    trials_doc = {"study": plan.study, "params": params,
                  "trials": [_trial_json(r, plan) for r in records],
                  "failed": [_trial_json(r, plan) for r in failed]}
    fingerprint = hashlib.sha256(jsonio.dumps(
        {"params": {k: v for k, v in params.items() if k != "storage"},
         "trials": [[r.number, r.params, [x["manifest_sha256"] for x in r.runs]]
                    for r in records]}).encode()).hexdigest()
    for art in reversed(store.versions(plan.task, SWEEP_STAGE)):
        try:
            if art.manifest.get("fingerprint") == fingerprint:
                return art, True
        except IntegrityError:
            continue
    with store.staging(plan.task, SWEEP_STAGE) as tmp:
        (tmp / "trials.json").write_text(jsonio.dumps(trials_doc, indent=2) + "\n",
                                         encoding="utf-8")
        (tmp / "trials.md").write_text(render_markdown(records, failed, plan, best),
                                       encoding="utf-8")
        (tmp / "best.json").write_text(jsonio.dumps(best_json(best, plan), indent=2) + "\n",
                                       encoding="utf-8")
        (tmp / "command.txt").write_text(command_text(best, plan), encoding="utf-8")
        manifest = {
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
            "params": params,
            # `inputs`: the best configuration's best-seed artifact (one version per
            # stage key, so that `theseus verify` walks its lineage); every trial
            # artifact is listed under `trial_artifacts`
            "inputs": inputs,
            "trial_artifacts": trial_artifacts,
            "metrics": {"best_median": best.median, "best_mean": best.mean,
                        "best_std": best.std, "trials": len(records), "failed": len(failed)},
            "info": {"best_trial": best.number, "best_params": best.params,
                     "artifacts_elsewhere": elsewhere},
            "timings": {"started_at": started, "seconds": round(time.monotonic() - t0, 2),
                        "trials_seconds": round(sum(r["seconds"] for rec in records
                                                    for r in rec.runs), 2)},
            "library_versions": {**library_versions(), "optuna": optuna.__version__},
        }
        art = store.publish(tmp, plan.task, SWEEP_STAGE, manifest)
    return art, False


def print_summary(console: Console, records: list[TrialRecord], plan: SweepPlan,
                  best: TrialRecord) -> None:
    """The trials table and the best configuration, with rich."""
    cols, rows = table_rows(records, plan)
    essential = {"trial #", "seed", METRIC, *(p.name for p in plan.space)}
    drop = {"trial median": 1, "trial mean": 2, "trial std": 2, "seconds": 4, "artifact": 6,
            "reused": 7}
    columns = [Column(c, "left" if c in ("artifact", "reused") else "right",
                      None if c in essential else drop.get(c, 3)) for c in cols]
    console.print(fitted_table(f"sweep {plan.stage} · {plan.task} · study {plan.study}",
                               columns, rows, console.width, "trials.md of the sweep version"))
    std = f" ± {best.std:.4f}" if best.std is not None else ""
    console.print(f"[bold green]best[/]: trial #{best.number} ({combo_text(best.params)}): "
                  f"median {split_name(plan.select)} {METRIC} [bold]{best.median:.4f}[/] "
                  f"(mean {best.mean:.4f}{std}) "
                  f"over {len(best.runs)} seed(s)")
    for line in command_text(best, plan).splitlines():
        if not line.startswith("#"):
            console.print(f"  {line}", highlight=False)
