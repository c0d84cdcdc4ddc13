"""``theseus evaluate`` (and ``--glue-all``): one row per method, and the paper's Table 2.

Every successor of every task (the Theseus successor and the baselines: each
stage with ``Stage.produces_successor``) is evaluated (up-to-date evaluations
are reused). Per task, a method table (:mod:`method_table`: seeds aggregated
into medians, the majority class beside them); across tasks, one table: a row
per method, a column per GLUE task (the paper's per-task dev number, section
4.1), the macro score over the 8 paper tasks (WNLI excluded) and retention.
Missing tasks are named, never dropped or filled in. The tables are published
by the stage :class:`GlueTable` as ``GLUE/glue-table/vN`` of the pseudo-task
``GLUE`` (Markdown + JSON), with the leaderboard zip when ``--predict-test`` was
given.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from theseus_builtin.stages.export import exported_model, onnx_exports
from theseus_builtin.stages.method_table import legend, render_task, size_cells, spread_cell, task_rows
from theseus_cli import plots
from theseus_cli.data.glue import PAPER_TASKS, PREDICTED_WITH, TASKS
from theseus_cli.data.submission import ZIP_NAME, zip_submission
from theseus_cli.errors import ConfigError, PlotError, StageInterrupted, TheseusError
from theseus_cli.plugin import Stage, StageContext, StageResult, param
from theseus_cli.plugin.registry import successor_stages
from theseus_cli.store import jsonio
from theseus_cli.store.artifacts import Artifact
from theseus_cli.tables import Column, fitted_table
from theseus_cli.workspace.multitask import TasksFailed

GLUE_TASK = "GLUE"  # artifacts/GLUE/glue-table/vN holds the cross-task table
COLUMNS = (*PAPER_TASKS, "WNLI")
#: raised when the tables' rows change for the same evaluations (2: one sample per seed,
#: variants compared on comparable data settings; 3: the method tables of the workspace's own
#: tasks too; 4: exported models' int8 ONNX sizes, parameters in the GLUE table; 5:
#: undertrained successors warned), so a rerun publishes them again
TABLE_FORMAT = 5


def evaluate_tasks(pipeline: Any, tasks: list[str], options: dict[str, Any]) -> Artifact:
    """Evaluate every successor of ``tasks`` and publish the method and GLUE tables.

    Every version of every successor-producing stage (``Stage.produces_successor``:
    finetune-successor, truncate, distill, ...) is evaluated, or ``--successor STAGE``
    only; up-to-date evaluations are reused, so a rerun costs nothing.

    Args:
        pipeline: the workspace's ``theseus_cli.workspace.pipeline.Pipeline``.
        tasks: task names to evaluate (GLUE's, or the workspace's own); the GLUE table,
            when a GLUE task is among them, always has all columns.
        options: ``overrides`` (evaluate params, e.g. predict_test), ``force``.

    Returns:
        The published (or reused) ``glue-table`` artifact, under ``GLUE/`` or the user's
        task's name (:func:`table_home`) (``tables.md``: one method table per task;
        ``glue_table.md``/``.json``: the paper's Table 2 layout).
    """
    store, console = pipeline.store, pipeline.console
    overrides = dict(options.get("overrides") or {})
    chosen = overrides.get("successor")
    swapping = chosen == "replace" and overrides.get("modules")  # section 5.1's analysis
    if chosen and chosen not in successor_stages() and not swapping:
        raise ConfigError(f"--successor {chosen}: not a stage that produces a successor; "
                          f"accepted: {', '.join(successor_stages())} (and replace with "
                          "--modules)")
    stages = [chosen] if chosen else successor_stages()
    evaluations: dict[str, list[Artifact]] = {}
    missing: dict[str, str] = {}
    errors: list[TheseusError] = []
    glue_run = any(t in COLUMNS for t in tasks)  # else only the user's own tasks
    for task in [*COLUMNS, *(t for t in tasks if t not in COLUMNS)]:
        if task not in tasks:
            if glue_run:
                missing[task] = "not among the tasks of this run"
            continue
        found = [(stage, a) for stage in stages for a in store.versions(task, stage)]
        if not found and len(tasks) == 1:  # one task: train what evaluate needs, as any stage
            found = [(chosen or "finetune-successor", None)]
        if not found:
            missing[task] = f"no trained successor ({', '.join(stages)}) in this workspace"
            continue
        for stage, successor in found:
            try:
                art = pipeline.run("evaluate", task, {**overrides, "successor": stage},
                                   pins={stage: successor.name} if successor else None,
                                   force=options.get("force", False))
            except StageInterrupted:  # a signal ends the whole command, not one item
                raise
            except TheseusError as e:
                what = successor.label if successor else f"{task}/{stage}"
                if len(tasks) > 1 or len(found) > 1:  # else the CLI prints it, once
                    console.print(f"[red]{task}: evaluating {what} failed: {e}[/]")
                errors.append(e)
                continue
            evaluations.setdefault(task, []).append(art)
        if task not in evaluations:
            missing[task] = "evaluation failed (see above)"
    if errors and not evaluations:
        raise errors[0]
    labels = [a.label for arts in evaluations.values() for a in arts]
    overrides_table = {"evaluations": labels, "exports": exports_of(store, evaluations),
                       "tasks": list(tasks), "missing": missing,
                       "predict_test": bool(overrides.get("predict_test"))}
    art = pipeline.run("glue-table", table_home(tasks), overrides_table, preflight=False,
                       force=options.get("force", False))
    show(console, art)
    if errors:
        raise TasksFailed(f"{len(errors)} evaluation(s) failed (named above); the tables "
                          f"({art.label}) hold the others") from errors[0]
    return art


def exports_of(store: Any, evaluations: dict[str, list[Artifact]]) -> list[str]:
    """Labels of the newest ONNX export of each evaluated model (successors and their
    teachers), whose file sizes the method tables show; an export made after the tables
    shows in them at the next ``evaluate`` (the evaluations are reused, the tables made
    again, because their inputs changed)."""
    found = []
    for task, arts in evaluations.items():
        models = set()
        for art in arts:
            info = art.manifest.get("info") or {}
            models.add(info.get("successor_artifact"))
            models.add(f"{task}/finetune-teacher/{info.get('teacher_artifact')}")
        found += [e.label for e in onnx_exports(store, task, models).values()]
    return sorted(found)


def table_home(tasks: list[str]) -> str:
    """Where an evaluate run files its tables: ``GLUE`` when a GLUE task is among
    ``tasks``, else the user's task's own name (several own tasks: their names joined by
    ``+``), e.g. ``artifacts/banking77/glue-table/vN``."""
    if any(t in COLUMNS for t in tasks):
        return GLUE_TASK
    return "+".join(dict.fromkeys(tasks))


class GlueTable(Stage):
    """The method table of each task and the paper's Table 2 across tasks, published as
    ``GLUE/glue-table/vN`` through the pipeline like any stage (fingerprint over the
    evaluations it reads, the stage lock, a manifest; reused when they are the same).

    ``evaluate`` runs it after evaluating every successor; its inputs are those
    evaluations, by full label (``MRPC/evaluate/v3``). Metrics: each method's macro
    score; info: the missing tasks and, with ``predict_test``, the leaderboard zip.
    """

    name = "glue-table"
    help = "the method tables and the paper's Table 2 across tasks (run by evaluate)"
    command = False

    @dataclass
    class Params:
        evaluations: list = param([], "evaluations the tables are made of, TASK/evaluate/vN",
                                  cli=False)
        exports: list = param([], "ONNX exports of the evaluated models, TASK/export/vN "
                                  "(their file sizes)", cli=False)
        tasks: list = param([], "tasks of the evaluate run (the others are named missing)",
                            cli=False)
        missing: dict = param({}, "task -> why it has no evaluation", cli=False)
        predict_test: bool = param(False, "also zip the leaderboard files", cli=False)
        format: int = param(TABLE_FORMAT, "version of the tables' layout (a new one publishes "
                                          "them again)", cli=False)

    def inputs_for(self, params, store=None, task=None) -> tuple[str, ...]:  # noqa: D102 - see Stage.inputs_for
        return (*params.evaluations, *params.exports)

    def run(self, ctx: StageContext) -> StageResult:  # noqa: D102 - see class

        evaluations: dict[str, list[Artifact]] = {}
        exports: dict[str, list[Artifact]] = {}
        for art in ctx.inputs.values():
            (exports if art.stage == "export" else evaluations).setdefault(art.task, []).append(art)
        order = [*COLUMNS, *sorted(t for t in evaluations if t not in COLUMNS)]
        onnx = {exported_model(ctx.store, e).label: e.manifest.get("metrics") or {}
                for arts in exports.values() for e in arts}  # model -> its files' MB
        per_task = {task: task_rows(ctx.store, evaluations[task], onnx)
                    for task in order if task in evaluations}
        table = build_table({t: r for t, r in per_task.items() if t in COLUMNS},
                            dict(ctx.params.missing))
        out = ctx.out_dir
        if ctx.params.predict_test:
            table["submission"] = collect_submission(table, evaluations, out)
        (out / "glue_table.json").write_text(jsonio.dumps(table, indent=2) + "\n")
        (out / "glue_table.md").write_text(render_markdown(table))
        (out / "tables.json").write_text(jsonio.dumps(per_task, indent=2) + "\n")
        (out / "tables.md").write_text("\n".join(render_task(t, r) for t, r in per_task.items()))
        metrics = {f"{row['model']}:macro": row["macro"] for row in table["rows"]
                   if row["macro"] is not None}
        return StageResult(metrics=metrics, info={"missing": table["missing"],
                                                  "submission": table.get("submission"),
                                                  "charts": charts(per_task, out, ctx.log)})


def charts(per_task: dict[str, list[dict]], out: Any, log: Any) -> list[str]:
    """Score against speed-up and parameters, one PNG per task (``chart_TASK.png``);
    names of those drawn. A chart that fails is reported and left out."""
    drawn = []
    for task, rows in per_task.items():
        try:
            path = plots.method_chart(task, rows, out / f"chart_{task}.png")
        except PlotError as e:
            log.info(f"[yellow]warning: {e}; published without it[/]")
            continue
        if path is not None:
            drawn.append(path.name)
    return drawn


def show(console: Any, art: Artifact) -> None:
    """Print the tables of a published (or reused) ``glue-table`` version."""
    import json

    per_task = json.loads(art.file("tables.json").read_text())
    for task, rows in per_task.items():
        print_task(console, task, rows, str(art.path / "tables.md"))
    table = json.loads(art.file("glue_table.json").read_text())
    if len(art.manifest.get("params", {}).get("tasks", [])) > 1:
        print_table(console, table)
    for name in art.manifest.get("info", {}).get("charts") or []:
        console.print(f"chart: {art.path / name} (score against speed-up and parameters)")


def build_table(per_task: dict[str, list[dict]], missing: dict[str, str]) -> dict[str, Any]:
    """The paper's Table 2 from the per-task method rows: a row per method (the
    teacher, each variant, the majority class), a column per task (median score over
    seeds), the macro score and retention."""
    cells: dict[str, dict[str, dict]] = {}
    for task, rows in per_task.items():
        teacher = next((r for r in rows if r["method"].startswith("teacher")), None)
        for r in rows:
            label = (r["method"] if not r["method"].startswith("teacher") else
                     "teacher")
            layers = r.get("layers")
            cells.setdefault(label, {})[task] = {
                "score": r["score"]["median"], "seeds": r["score"]["n"], "layers": layers,
                "teacher": teacher["score"]["median"] if teacher else None,
                "artifact": ", ".join(r.get("artifacts") or []),
                "size": size_cells(r, teacher.get("weights_mb") if teacher else None)}
    rows = []
    for label, by_task in cells.items():
        layers = sorted({c["layers"] for c in by_task.values() if c["layers"] is not None})
        shown = f"{label} ({'/'.join(map(str, layers))}L)" if label == "teacher" and layers else label
        rows.append(_row(shown, by_task))
    for row in rows:
        row["retention"], row["retention_over"] = _retention(row)
    return {"columns": list(COLUMNS), "paper_tasks": list(PAPER_TASKS), "rows": rows,
            "missing": missing}


def _row(label: str, cells: dict[str, dict]) -> dict[str, Any]:
    scores = {t: (cells[t]["score"] if t in cells else None) for t in COLUMNS}
    paper = [scores[t] for t in PAPER_TASKS]
    macro = statistics.fmean(paper) if all(v is not None for v in paper) else None
    # each successor is compared with the teacher it was compressed from (same evaluation)
    teachers = {t: cells[t].get("teacher") or cells[t]["score"] for t in cells}
    # sizes differ between tasks only by the classifier: those of the first task that has them
    size = next((cells[t]["size"] for t in [*COLUMNS, *cells] if t in cells
                 and cells[t]["size"][0] != "—"), ("—",) * 6)
    return {"model": label, "scores": scores, "macro": macro, "teacher_scores": teachers,
            "artifacts": {t: c["artifact"] for t, c in cells.items()},
            "params": size[0], "embedding": size[1], "fp32_mb": size[2], "int8_mb": size[3]}


def _retention(row: dict) -> tuple[float | None, list[str]]:
    """Row / its own teachers × 100 (teacher scores from the same evaluations): over
    the macro score when all 8 tasks are there, else over the mean of the paper
    tasks the row has (named in ``retention_over``)."""
    have = [t for t in PAPER_TASKS if row["scores"][t] is not None]
    if not have:
        return None, []
    if any(row["teacher_scores"].get(t) is None for t in have):
        return None, []
    t_mean = statistics.fmean(row["teacher_scores"][t] for t in have)
    r_mean = statistics.fmean(row["scores"][t] for t in have)
    return (100.0 * r_mean / t_mean if t_mean else None), have


def _cell(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or v != v else f"{100 * v:.{digits}f}"


def _retention_cell(row: dict) -> str:
    if row["retention"] is None:
        return "—"
    over = row["retention_over"]
    note = "" if len(over) == len(PAPER_TASKS) else f" ({', '.join(over)})"
    return f"{row['retention']:.1f}%{note}"


def render_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown, shaped like the paper's Table 2, with missing tasks named."""
    cols = ["Params", "emb", "fp32 MB", "int8 MB", *PAPER_TASKS, "Macro", "WNLI", "Retention"]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in table["rows"]:
        cells = [row.get(k, "—") for k in ("params", "embedding", "fp32_mb", "int8_mb")]
        cells += [_cell(row["scores"][t]) for t in PAPER_TASKS]
        cells += [_cell(row["macro"]), _cell(row["scores"]["WNLI"]), _retention_cell(row)]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    lines += ["", "GLUE dev, the paper's per-task numbers (section 4.1): MNLI mean of m/mm "
              "accuracy, MRPC and QQP mean of F1 and accuracy, STS-B mean of Pearson and "
              "Spearman, CoLA Matthews; Macro over the 8 tasks without WNLI, only when all 8 "
              "are present. Params (emb: the word embedding's share), fp32 MB (weights file) "
              "and int8 MB (the newest int8 ONNX export, — when none): of the first task "
              "that has them (tasks differ only by the classifier)."]
    if table["missing"]:
        lines += ["", "Missing:"] + [f"- {t}: {why}" for t, why in table["missing"].items()]
    return "\n".join(lines) + "\n"


def print_task(console: Any, task: str, rows: list[dict], full_table: str = "") -> None:
    """One task's method table, fitted to the terminal (:func:`theseus_cli.tables.fitted_table`:
    no word cut; the least telling columns left out first): medians, mean ± std and seeds."""
    names = list(rows[0]["metrics"]) if rows else []
    tests = [n for n in names if n.startswith("test_")]
    # the first test metric (a user's labelled test file) is left out last but retention
    columns = [Column("method"), Column("layers", "right", 4), Column("params", "right", 5),
               Column("emb", "right", 5.5), Column("MB", "right", 5.6),
               Column("int8 MB", "right", 5.3), Column("× smaller", "right", 5.4),
               Column("× smaller (int8)", "right", 5.2),
               *(Column(n, "right", 1.5 if tests and n == tests[0] else 3) for n in names),
               Column("score", "right"),
               Column("mean ± std (n)", "right", 6), Column("retention", "right", 1),
               Column("speed-up", "right", 2), Column("train time", "right", 7)]
    cells = []
    for r in rows:
        sc = r["score"]
        cells.append([
            r["method"], "—" if r["layers"] is None else str(r["layers"]),
            *size_cells(r, rows[0].get("weights_mb") if rows else None),
            *(_cell(r["metrics"][n]["median"], 2) for n in names), _cell(sc["median"], 2),
            spread_cell(sc),
            "—" if r["retention"]["median"] is None else f"{r['retention']['median']:.1f}%",
            "—" if r["speedup"]["median"] is None else f"{r['speedup']['median']:.2f}×",
            "—" if not r["seconds"]["median"] else f"{r['seconds']['median']:.0f} s"])
    split = ("dev (test_: the test file)" if any(n.startswith("test_") for n in names)
             else "dev")
    console.print(fitted_table(f"{task} {split}: one row per method (median over seeds)",
                               columns, cells, console.width, full_table))
    for line in legend(rows)[1:]:
        console.print(line, markup=False, highlight=False)
    for r in rows:
        for w in r.get("warnings", []):
            console.print(f"[yellow]warning: {r['method']}: {w}[/]")


def print_table(console: Any, table: dict[str, Any]) -> None:
    """The same table, fitted to the terminal (no word cut; WNLI and Retention left out
    first, else one block per model)."""
    columns = [Column("model"), Column("Params", "right", 1.5),
               *(Column(c, "right") for c in PAPER_TASKS),
               Column("Macro", "right"), Column("WNLI", "right", 2),
               Column("Retention", "right", 1)]
    cells = [[row["model"], row.get("params", "—"), *(_cell(row["scores"][c]) for c in PAPER_TASKS),
              _cell(row["macro"]), _cell(row["scores"]["WNLI"]), _retention_cell(row)]
             for row in table["rows"]]
    console.print(fitted_table("GLUE dev (paper Table 2 layout)", columns, cells,
                               console.width))
    for task, why in table["missing"].items():
        console.print(f"[yellow]missing {task}[/]: {why}")


def collect_submission(table: dict[str, Any], evaluations: dict[str, list[Artifact]],
                       out: Any) -> dict[str, Any]:
    """Zip the successor's leaderboard files of every task into ``out``.

    Uses the latest evaluation of each task. Returns ``{"files": {name: rows},
    "missing": [leaderboard file names without predictions]}``.
    """
    expected = [TASKS[t].submission_file(s) for t in TASKS for s in TASKS[t].test_splits]
    files = {}
    for arts in evaluations.values():
        theseus = [a for a in arts
                   if a.manifest.get("params", {}).get("successor") == "finetune-successor"]
        latest = max(theseus or arts, key=lambda a: a.version)  # the Theseus successor first
        for p in sorted((latest.path / "submission").glob("*.tsv")):
            files[p.name] = p
    if files:
        zip_submission(list(files.values()), out / ZIP_NAME)
    rows = {name: sum(1 for _ in open(p, encoding="utf-8")) - 1 for name, p in files.items()}
    absent = [n for n in expected if n not in files]
    hint = {n: f"needs an {PREDICTED_WITH['AX']} model" for n in absent if n == "AX.tsv"}
    return {"files": rows, "missing": absent, "notes": hint}
