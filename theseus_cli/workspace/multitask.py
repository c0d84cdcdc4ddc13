"""Run one stage over several tasks (a multi-task workspace, ``--task`` repeated, ``--glue-all``)."""

from __future__ import annotations

from typing import Any

from theseus_cli.errors import StageInterrupted, TheseusError
from theseus_cli.plugin import registry
from theseus_cli.store.artifacts import Artifact


class TasksFailed(TheseusError):
    """Some tasks of a multi-task run failed; the others were published."""


def run_tasks(pipeline: Any, stage: str, tasks: list[str], options: dict[str, Any]) -> list[Artifact]:
    """Run ``stage`` for each task; returns the published artifacts.

    A stage that implements ``Stage.aggregate`` (``evaluate``: every successor,
    the method tables and the GLUE table) runs them as one job, unless an input
    is pinned (``--from``); with one task any other stage is ``pipeline.run``;
    with several it runs task by task, and a task that fails (e.g. its
    data is missing) is reported and the next one runs.

    Raises:
        TasksFailed: after the loop, naming every failed task and why.
        TheseusError: the single task's error when only one task was asked for.
    """
    stage_obj = registry.stage(stage)()
    if not options.get("pins"):  # a pinned input means: exactly that run
        combined = stage_obj.aggregate(pipeline, tasks, options)
        if combined is not NotImplemented:
            return [combined] if combined is not None else []
    if len(tasks) == 1:
        return [pipeline.run(stage, tasks[0], **options)]
    done, failed = [], {}
    for task in tasks:
        try:
            done.append(pipeline.run(stage, task, **options))
        except StageInterrupted:  # a signal ends the whole command, not one task
            raise
        except TheseusError as e:
            failed[task] = str(e)
            pipeline.console.print(f"[red]{task}: {e}[/]")
    if failed:
        lines = "\n".join(f"  {t}: {why}" for t, why in failed.items())
        ok = ", ".join(a.task for a in done) or "none"
        raise TasksFailed(f"{stage} failed for {len(failed)} of {len(tasks)} tasks "
                          f"(published: {ok}):\n{lines}")
    return done
