"""``theseus evaluate --glue-all``: the paper's Table 2 for this workspace.

Every finetune-successor version of every task is evaluated (up-to-date
evaluations are reused), then one table is built: a row per model (the
teacher, and one per successor variant), a column per GLUE task (the paper's
per-task dev number, section 4.1), the macro score over the 8 paper tasks
(WNLI excluded) and retention. Missing tasks are named, never dropped or
filled in. The table is published as an ``evaluate`` artifact of the
pseudo-task ``GLUE`` (Markdown + JSON), with the leaderboard zip when
``--predict-test`` was given.
"""

from __future__ import annotations

import statistics
from typing import Any

from theseus_cli import jsonio
from theseus_cli.artifacts import Artifact
from theseus_cli.errors import TheseusError
from theseus_cli.glue import PAPER_TASKS, PREDICTED_WITH, TASKS

GLUE_TASK = "GLUE"  # artifacts/GLUE/evaluate/vN holds the cross-task table
COLUMNS = (*PAPER_TASKS, "WNLI")


def variant_label(store: Any, evaluation: Artifact) -> str:
    """A successor variant's name, from its lineage: layers, scheduler and its
    arguments, and what was fine-tuned (e.g. ``successor 3L, linear b=0.3 steps_to_one=300``)."""
    successor = store.lineage(evaluation, "finetune-successor")
    info = store.lineage(successor, "replace").manifest.get("info", {})
    scheduler = info.get("scheduler", {})
    args = " ".join(f"{k}={v}" for k, v in (scheduler.get("params") or {}).items()
                    if v is not None)
    label = f"successor {info.get('layers', '?')}L, {scheduler.get('name', '?')} {args}".strip()
    if successor.manifest["params"].get("train") == "all":
        label += ", all parameters fine-tuned"
    return label


def evaluate_tasks(pipeline: Any, tasks: list[str], options: dict[str, Any]) -> Artifact:
    """Evaluate every successor version of ``tasks`` and publish the GLUE table.

    Args:
        pipeline: the workspace's ``theseus_cli.pipeline.Pipeline``.
        tasks: GLUE task names to evaluate; the table always has all columns.
        options: ``overrides`` (evaluate params, e.g. predict_test), ``force``.

    Returns:
        The published ``GLUE/evaluate/vN`` artifact.
    """
    import datetime as dt
    import time

    from theseus_cli.pipeline import library_versions

    started, t0 = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), time.monotonic()
    store, console = pipeline.store, pipeline.console
    evaluations: dict[str, list[Artifact]] = {}
    missing: dict[str, str] = {}
    for task in COLUMNS:
        if task not in tasks:
            missing[task] = "not among the tasks of this run"
            continue
        successors = store.versions(task, "finetune-successor")
        if not successors:
            missing[task] = "no trained successor (finetune-successor) in this workspace"
            continue
        for successor in successors:
            try:
                art = pipeline.run("evaluate", task, options.get("overrides"),
                                   pins={"finetune-successor": successor.name},
                                   force=options.get("force", False))
            except TheseusError as e:
                console.print(f"[red]{task}: evaluating {successor.name} failed: {e}[/]")
                continue
            evaluations.setdefault(task, []).append(art)
        if task not in evaluations:
            missing[task] = "evaluation failed (see above)"
    table = build_table(store, evaluations, missing)
    predict = bool((options.get("overrides") or {}).get("predict_test"))
    with store.staging(GLUE_TASK, "evaluate") as tmp:
        if predict:
            table["submission"] = collect_submission(table, evaluations, tmp)
        (tmp / "glue_table.json").write_text(jsonio.dumps(table, indent=2) + "\n")
        (tmp / "glue_table.md").write_text(render_markdown(table))
        manifest = {
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "params": {"tasks": tasks, "predict_test": predict},
            "inputs": {f"{t}/evaluate": {"version": a.name, "manifest_sha256": a.manifest_sha256}
                       for t, arts in evaluations.items() for a in arts},
            "metrics": {f"{row['model']}:macro": row["macro"] for row in table["rows"]
                        if row["macro"] is not None},
            "info": {"missing": missing, "submission": table.get("submission")},
            "timings": {"started_at": started, "seconds": round(time.monotonic() - t0, 2)},
            "library_versions": library_versions(),
        }
        art = store.publish(tmp, GLUE_TASK, "evaluate", manifest)
    print_table(console, table)
    console.print(f"[green]published[/] {GLUE_TASK}/evaluate/{art.name} → {art.path}")
    return art


def build_table(store: Any, evaluations: dict[str, list[Artifact]],
                missing: dict[str, str]) -> dict[str, Any]:
    """Rows of scores (fractions) by model label and task; see module docstring."""
    teacher: dict[str, dict] = {}
    variants: dict[str, dict[str, dict]] = {}
    for task, arts in evaluations.items():
        for art in sorted(arts, key=lambda a: a.version):  # later versions win
            m = art.manifest["metrics"]
            label = variant_label(store, art)
            variants.setdefault(label, {})[task] = {"score": m["successor_score"],
                                                    "teacher": m["teacher_score"],
                                                    "artifact": f"{task}/evaluate/{art.name}"}
            teacher[task] = {"score": m["teacher_score"], "layers": m["teacher_layers"],
                             "artifact": f"{task}/evaluate/{art.name}"}
    layers = sorted({t["layers"] for t in teacher.values()})
    rows = [_row(f"teacher ({'/'.join(map(str, layers))}L)" if layers else "teacher", teacher)]
    rows += [_row(label, cells) for label, cells in variants.items()]
    for row in rows:
        row["retention"], row["retention_over"] = _retention(row)
    return {"columns": list(COLUMNS), "paper_tasks": list(PAPER_TASKS), "rows": rows,
            "missing": missing}


def _row(label: str, cells: dict[str, dict]) -> dict[str, Any]:
    scores = {t: (cells[t]["score"] if t in cells else None) for t in COLUMNS}
    paper = [scores[t] for t in PAPER_TASKS]
    macro = statistics.fmean(paper) if all(v is not None for v in paper) else None
    # each successor is compared with the teacher it was compressed from (same evaluation)
    teachers = {t: cells[t].get("teacher", cells[t]["score"]) for t in cells}
    return {"model": label, "scores": scores, "macro": macro, "teacher_scores": teachers,
            "artifacts": {t: c["artifact"] for t, c in cells.items()}}


def _retention(row: dict) -> tuple[float | None, list[str]]:
    """Row / its own teachers × 100 (teacher scores from the same evaluations): over
    the macro score when all 8 tasks are there, else over the mean of the paper
    tasks the row has (named in ``retention_over``)."""
    have = [t for t in PAPER_TASKS if row["scores"][t] is not None]
    if not have:
        return None, []
    t_mean = statistics.fmean(row["teacher_scores"][t] for t in have)
    r_mean = statistics.fmean(row["scores"][t] for t in have)
    return (100.0 * r_mean / t_mean if t_mean else None), have


def _cell(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def _retention_cell(row: dict) -> str:
    if row["retention"] is None:
        return "—"
    over = row["retention_over"]
    note = "" if len(over) == len(PAPER_TASKS) else f" ({', '.join(over)})"
    return f"{row['retention']:.1f}%{note}"


def render_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown, shaped like the paper's Table 2, with missing tasks named."""
    cols = [*PAPER_TASKS, "Macro", "WNLI", "Retention"]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in table["rows"]:
        cells = [_cell(row["scores"][t]) for t in PAPER_TASKS]
        cells += [_cell(row["macro"]), _cell(row["scores"]["WNLI"]), _retention_cell(row)]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    lines += ["", "GLUE dev, the paper's per-task numbers (section 4.1): MNLI mean of m/mm "
              "accuracy, MRPC and QQP mean of F1 and accuracy, STS-B mean of Pearson and "
              "Spearman, CoLA Matthews; Macro over the 8 tasks without WNLI, only when all 8 "
              "are present."]
    if table["missing"]:
        lines += ["", "Missing:"] + [f"- {t}: {why}" for t, why in table["missing"].items()]
    return "\n".join(lines) + "\n"


def print_table(console: Any, table: dict[str, Any]) -> None:
    """The same table with rich."""
    from rich.table import Table

    t = Table(title="GLUE dev (paper Table 2 layout)")
    for col in ("model", *PAPER_TASKS, "Macro", "WNLI", "Retention"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in table["rows"]:
        t.add_row(row["model"], *(_cell(row["scores"][c]) for c in PAPER_TASKS),
                  _cell(row["macro"]), _cell(row["scores"]["WNLI"]), _retention_cell(row))
    console.print(t)
    for task, why in table["missing"].items():
        console.print(f"[yellow]missing {task}[/]: {why}")


def collect_submission(table: dict[str, Any], evaluations: dict[str, list[Artifact]],
                       out: Any) -> dict[str, Any]:
    """Zip the successor's leaderboard files of every task into ``out``.

    Uses the latest evaluation of each task. Returns ``{"files": {name: rows},
    "missing": [leaderboard file names without predictions]}``.
    """
    from theseus_cli.submission import ZIP_NAME, zip_submission

    expected = [TASKS[t].submission_file(s) for t in TASKS for s in TASKS[t].test_splits]
    files = {}
    for arts in evaluations.values():
        latest = max(arts, key=lambda a: a.version)
        for p in sorted((latest.path / "submission").glob("*.tsv")):
            files[p.name] = p
    if files:
        zip_submission(list(files.values()), out / ZIP_NAME)
    rows = {name: sum(1 for _ in open(p, encoding="utf-8")) - 1 for name, p in files.items()}
    absent = [n for n in expected if n not in files]
    hint = {n: f"needs an {PREDICTED_WITH['AX']} model" for n in absent if n == "AX.tsv"}
    return {"files": rows, "missing": absent, "notes": hint}
