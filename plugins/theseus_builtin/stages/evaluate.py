"""``evaluate``: GLUE dev metrics of teacher and successor, retention, size, speed-up."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_cli import jsonio

from theseus_cli.contracts import Stage, StageContext, StageResult, param


class Evaluate(Stage):
    """Scores the successor and the teacher it came from on the task's dev set.

    The teacher is the finetune-teacher version in the successor's lineage
    (finetune-successor → replace → finetune-teacher). Retention is successor
    score / teacher score × 100, with the paper's per-task score (section 4.1).
    Speed-up is measured on the same dev batches, same machine, in this run.
    """

    name = "evaluate"
    help = "dev metrics of teacher and successor, retention, parameter counts and speed-up"
    inputs = ("finetune-successor",)
    summary_metrics = ("teacher_score", "successor_score", "retention", "speedup")

    @dataclass
    class Params:
        eval_batch_size: int = param(64, "examples per batch for dev evaluation and timing", min=1)
        speed_batches: int | None = param(
            8, "dev batches timed for the speed-up; null: the whole dev set", min=1)
        speed_repeats: int = param(5, "timed passes per model (median is used)", min=1)
        predict_test: bool = param(False, "also write the successor's test-set predictions in "
                                          "the GLUE server's files, zipped")

    def run(self, ctx: StageContext) -> StageResult:
        from theseus_cli import models
        from theseus_cli.artifacts import ArtifactStore
        from theseus_cli.glue import get_task
        from theseus_cli.replacing import count_parameters
        from theseus_cli.speed import compare_speed

        task, p = get_task(ctx.task), ctx.params
        successor_art = ctx.inputs["finetune-successor"]
        teacher_art = ArtifactStore(ctx.config.artifacts_dir).lineage(successor_art, "finetune-teacher")
        teacher, tokenizer = models.load_saved(teacher_art.file(models.MODEL_DIR))
        successor, _ = models.load_saved(successor_art.file(models.MODEL_DIR))
        teacher, successor = ctx.runtime.prepare(teacher, successor)
        scores, loader, dev_examples = score_dev({"teacher": teacher, "successor": successor},
                                                 tokenizer, task, ctx)
        batches = []
        for batch in loader:
            batches.append({k: v for k, v in batch.items() if k != "labels"})
            if p.speed_batches and len(batches) >= p.speed_batches:
                break
        speed = compare_speed(teacher, successor, batches, repeats=p.speed_repeats)
        teacher, successor = ctx.runtime.unwrap(teacher), ctx.runtime.unwrap(successor)
        sizes = {"teacher": count_parameters(teacher), "successor": count_parameters(successor)}
        layers = {"teacher": models.num_layers(teacher), "successor": models.num_layers(successor)}
        t_score, s_score = scores["teacher"]["score"], scores["successor"]["score"]
        metrics = {f"{role}_{k}": v for role, m in scores.items() for k, v in m.items()}
        metrics.update(retention=100.0 * s_score / t_score if t_score else float("nan"),
                       speedup=speed["speedup"],
                       teacher_parameters=sizes["teacher"]["total"],
                       successor_parameters=sizes["successor"]["total"],
                       teacher_layers=layers["teacher"], successor_layers=layers["successor"])
        report = {"task": task.name, "dev_examples": dev_examples, "teacher": teacher_art.name,
                  "successor": successor_art.name, "metrics": scores, "parameters": sizes,
                  "layers": layers, "speed": {**speed, "device": ctx.runtime.device_name,
                                              "batch_size": p.eval_batch_size}}
        info = {"speed": report["speed"], "teacher_artifact": teacher_art.name}
        if p.predict_test:
            info["submission"] = predict_test(successor, tokenizer, task, ctx)
        if ctx.runtime.is_main_process:
            (ctx.out_dir / "report.json").write_text(jsonio.dumps(report, indent=2) + "\n")
            (ctx.out_dir / "report.md").write_text(render_markdown(report, metrics["retention"]))
            ctx.log.info(render_markdown(report, metrics["retention"]))
        return StageResult(metrics=metrics, info=info)

    def aggregate(self, pipeline, tasks, options):  # noqa: D102 - see Stage.aggregate
        from theseus_builtin.stages.glue_table import evaluate_tasks

        return evaluate_tasks(pipeline, tasks, options)


def score_dev(models: dict, tokenizer, task, ctx: StageContext) -> tuple[dict, object, int]:
    """Dev metrics of each model on every dev split of the task (MNLI: matched and
    mismatched, metric names suffixed ``_matched``/``_mismatched``), plus ``score``.

    Returns:
        ``(role -> metrics, loader of the first dev split (prepared), dev examples)``.
    """
    from theseus_cli.data import load_tokenized, make_dataloader
    from theseus_cli.metrics import task_score
    from theseus_cli.training import evaluate

    scores: dict = {role: {} for role in models}
    first_loader, examples = None, 0
    for split in task.dev_splits:
        ds = load_tokenized(ctx.config, task, tokenizer, split)
        examples += len(ds)
        loader = ctx.runtime.prepare(make_dataloader(ds, tokenizer, ctx.params.eval_batch_size,
                                                     shuffle=False))
        first_loader = first_loader or loader
        suffix = "" if len(task.dev_splits) == 1 else "_" + split.removeprefix("dev_")
        for role, model in models.items():
            m = evaluate(model, loader, ctx.runtime, task)
            m.pop("score")
            scores[role].update({k + suffix: v for k, v in m.items()})
    for role in models:
        scores[role]["score"] = task_score(task, scores[role])
    return scores, first_loader, examples


def predict_test(model, tokenizer, task, ctx: StageContext) -> dict:
    """Write the leaderboard files of every test split the model answers, and a zip.

    Returns:
        ``file name -> rows`` written under ``submission/`` of the artifact.
    """
    from theseus_cli.data import load_split, make_dataloader, tokenize_split
    from theseus_cli.submission import ZIP_NAME, prediction_strings, answered_test_splits
    from theseus_cli.submission import write_predictions, zip_submission
    from theseus_cli.training import predict

    written, files = {}, []
    for data_task, split in answered_test_splits(task):
        raw = load_split(data_task, split, ctx.config.glue_dir())
        ds = tokenize_split(raw, tokenizer, data_task,
                            ctx.config.data.max_seq_length or data_task.max_seq_length)
        loader = ctx.runtime.prepare(make_dataloader(ds, tokenizer, ctx.params.eval_batch_size,
                                                     shuffle=False))
        logits, _ = predict(model, loader, ctx.runtime)
        name = data_task.submission_file(split)
        if ctx.runtime.is_main_process:
            path = ctx.out_dir / "submission" / name
            write_predictions(path, list(raw["idx"]), prediction_strings(task, logits))
            files.append(path)
        written[name] = len(raw)
    if ctx.runtime.is_main_process and files:
        zip_submission(files, ctx.out_dir / "submission" / ZIP_NAME)
    ctx.log.info("test predictions: " + ", ".join(f"{n} ({r} rows)" for n, r in written.items()))
    return written


def render_markdown(report: dict, retention: float) -> str:
    """A Markdown table of one task's teacher vs successor comparison."""
    names = [k for k in report["metrics"]["teacher"] if k != "score"]
    head = ["model", "layers", "parameters", *names, "score", "retention", "speed-up"]
    rows = []
    for role in ("teacher", "successor"):
        m = report["metrics"][role]
        rows.append([f"{role} ({report[role]})", str(report["layers"][role]),
                     f"{report['parameters'][role]['total'] / 1e6:.1f}M",
                     *(f"{100 * m[k]:.2f}" for k in names), f"{100 * m['score']:.2f}",
                     "100.0%" if role == "teacher" else (
                         f"{retention:.1f}%" if retention == retention else "n/a (teacher 0)"),
                     "1.00×" if role == "teacher" else f"{report['speed']['speedup']:.2f}×"])
    lines = [f"### {report['task']} dev ({report['dev_examples']} examples)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    s = report["speed"]
    lines += ["", f"Speed: {s['examples']} dev examples per pass, batch {s['batch_size']}, "
                  f"{s['device']}; median {s['teacher_seconds']:.3f} s (teacher) vs "
                  f"{s['successor_seconds']:.3f} s (successor)."]
    return "\n".join(lines) + "\n"
