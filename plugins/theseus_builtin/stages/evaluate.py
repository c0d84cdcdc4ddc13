"""``evaluate``: GLUE dev metrics of teacher and successor, retention, size, speed-up."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_builtin.stages.glue_table import evaluate_tasks
from theseus_cli.data import load_split, load_tokenized, make_dataloader, tokenize_split
from theseus_cli.data.submission import (
    ZIP_NAME,
    answered_test_splits,
    prediction_strings,
    write_predictions,
    zip_submission,
)
from theseus_cli.deploy.latency import compare_speed
from theseus_cli.deploy.onnx import weights_mb
from theseus_cli.errors import ConfigError
from theseus_cli.method.swap import parse_modules, swap_in
from theseus_cli.model import loading as models
from theseus_cli.model.vocabulary import vocabulary_key
from theseus_cli.plugin import CheckContext, Stage, StageContext, StageResult, param
from theseus_cli.plugin.registry import kind_of, successor_stages
from theseus_cli.store import jsonio
from theseus_cli.train.loop import predict

#: a model whose dev predictions put at least this share in one class is flagged
DEGENERATE_SHARE = 0.95
#: ... and so is one whose score is within this many points of the majority class
DEGENERATE_MARGIN = 0.01


class Evaluate(Stage):
    """Scores a successor and the teacher it came from on the task's dev set.

    The successor is the latest (or pinned) artifact of ``--successor STAGE``, any
    stage that produces one (``finetune-successor``: BERT-of-Theseus; ``truncate``
    and ``distill``: the paper's baselines). The teacher is the finetune-teacher
    version in its lineage. Retention is successor score / teacher score × 100,
    with the paper's per-task score (section 4.1). The majority-class score
    (always answering the training set's most frequent class) is reported beside
    them, and a successor whose dev predictions are (nearly) all one class, or
    whose score is within a point of the majority class, is flagged. Speed-up is
    measured on the same dev batches, same machine, in this run.
    """

    name = "evaluate"
    help = "dev metrics of teacher and successor, retention, parameter counts and speed-up"
    inputs = ("finetune-successor",)
    summary_metrics = ("teacher_score", "successor_score", "retention", "speedup")
    shared_across_seeds = True

    @dataclass
    class Params:
        eval_batch_size: int = param(64, "examples per batch for dev evaluation and timing", min=1)
        speed_batches: int | None = param(
            8, "dev batches timed for the speed-up; null: the whole dev set", min=1)
        speed_repeats: int = param(5, "timed passes per model (median is used)", min=1)
        predict_test: bool = param(False, "also write the successor's test-set predictions in "
                                          "the GLUE server's files, zipped")
        successor: str = param("finetune-successor", "the stage whose successor is evaluated: "
                               "finetune-successor (Theseus), truncate or distill (baselines), "
                               "or a plugin's (`theseus plugins`)")
        modules: str | None = param(None, "evaluate the teacher with only these successor "
                                          "modules in place of its own (1-based, "
                                          "comma-separated, e.g. 1; paper section 5.1, Table "
                                          "5); null: the whole successor")

    def inputs_for(self, params, store=None, task=None) -> tuple[str, ...]:  # noqa: D102 - see Stage.inputs_for
        return (params.successor,)

    def check(self, ctx: CheckContext) -> None:
        """``--successor`` names a stage that produces a successor."""
        if ctx.params.successor not in successor_stages() and not (
                ctx.params.modules and ctx.params.successor == "replace"):
            raise ConfigError(f"{ctx.setting('successor')}: not a stage that produces a "
                              f"successor; accepted: {', '.join(successor_stages())} (and "
                              "replace with --modules)")
        if ctx.params.modules is not None:
            parse_modules(ctx.params.modules, ctx.setting("modules"))

    def run(self, ctx: StageContext) -> StageResult:
        from theseus_cli.method.parameters import count_parameters

        task, p = ctx.task_definition, ctx.params
        successor_art = ctx.inputs[p.successor]
        teacher_art = ctx.lineage(successor_art, "finetune-teacher")
        teacher, tokenizer = ctx.load_model(teacher_art)
        successor, successor_tokenizer = ctx.load_model(successor_art)  # its own: trim-vocab
        method = successor_art.manifest.get("info", {}).get("method", p.successor)
        recipe = successor_art.manifest.get("info", {}).get("recipe", method)
        if p.modules:  # section 5.1: prd_i -> scc_i, the rest the teacher's own layers
            chosen = parse_modules(p.modules, f"--modules {p.modules}")
            successor = swap_in(teacher, successor, chosen)
            swapped = (f"teacher with module{'s' if len(chosen) > 1 else ''} "
                       f"{','.join(map(str, chosen))} of ")
            method, recipe = swapped + method, swapped + recipe
        teacher, successor = ctx.runtime.prepare(teacher, successor)
        scores, loaders, dev_examples, shares = score_dev(
            {"teacher": teacher, "successor": successor},
            {"teacher": tokenizer, "successor": successor_tokenizer}, task, ctx)
        batches = {role: _speed_batches(loader, p.speed_batches) for role, loader in loaders.items()}
        speed = compare_speed(teacher, successor, batches["teacher"], repeats=p.speed_repeats,
                              successor_batches=batches["successor"])
        teacher, successor = ctx.runtime.unwrap(teacher), ctx.runtime.unwrap(successor)
        sizes = {"teacher": count_parameters(teacher), "successor": count_parameters(successor)}
        layers = {"teacher": models.num_layers(teacher), "successor": models.num_layers(successor)}
        t_score, s_score = scores["teacher"]["score"], scores["successor"]["score"]
        metrics = {f"{role}_{k}": v for role, m in scores.items() for k, v in m.items()}
        names = {"teacher": teacher_art.label, "successor": f"{successor_art.label}, {method}"}
        warnings = [w for role in ("teacher", "successor")
                    if (w := degenerate_warning(f"{role} ({names[role]})", scores[role],
                                                scores["majority"], shares[role],
                                                kind_of(task).trivial_name))]
        for w in warnings:
            ctx.log.info(f"[yellow]warning: {w}[/]")
        metrics.update(retention=100.0 * s_score / t_score if t_score else float("nan"),
                       speedup=speed["speedup"],
                       teacher_parameters=sizes["teacher"]["total"],
                       successor_parameters=sizes["successor"]["total"],
                       teacher_embedding_parameters=sizes["teacher"]["embedding"],
                       successor_embedding_parameters=sizes["successor"]["embedding"],
                       teacher_weights_mb=weights_mb(teacher_art.file(models.MODEL_DIR)),
                       successor_weights_mb=weights_mb(successor_art.file(models.MODEL_DIR)),
                       teacher_layers=layers["teacher"], successor_layers=layers["successor"])
        report = {"task": task.name, "dev_examples": dev_examples, "teacher": teacher_art.name,
                  "successor": successor_art.name, "metrics": scores, "parameters": sizes,
                  "layers": layers, "trivial": kind_of(task).trivial_name,
                  "speed": {**speed, "device": ctx.runtime.device_name, "batch_size": p.eval_batch_size}}
        info = {"speed": report["speed"], "teacher_artifact": teacher_art.name,
                "successor_artifact": successor_art.label, "method": method, "recipe": recipe,
                "top_class_share": shares, "warnings": warnings,
                "trivial": kind_of(task).trivial_name}
        if p.predict_test:
            info["submission"] = predict_test(successor, successor_tokenizer, task, ctx)
        if ctx.runtime.is_main_process:
            (ctx.out_dir / "report.json").write_text(jsonio.dumps(report, indent=2) + "\n")
            (ctx.out_dir / "report.md").write_text(render_markdown(report, metrics["retention"]))
            ctx.log.info(render_markdown(report, metrics["retention"]))
        return StageResult(metrics=metrics, info=info)

    def aggregate(self, pipeline, tasks, options):  # noqa: D102 - see Stage.aggregate

        return evaluate_tasks(pipeline, tasks, options)


def _speed_batches(loader, limit: int | None) -> list[dict]:
    """The first ``limit`` batches of ``loader`` (all with None), without labels."""
    batches = []
    for batch in loader:
        batches.append({k: v for k, v in batch.items() if k != "labels"})
        if limit and len(batches) >= limit:
            break
    return batches


def score_dev(models: dict, tokenizers: dict, task, ctx: StageContext) -> tuple[dict, dict, int, dict]:
    """Dev metrics of each model on every dev split of the task (MNLI: matched and
    mismatched, metric names suffixed ``_matched``/``_mismatched``), plus ``score`` (from
    dev), and the same for the majority-class baseline (role ``majority``); for a user's
    task with a labelled test file, the test metrics too, prefixed ``test_``. Each model
    reads the split as its own tokenizer (``tokenizers[role]``) tokenises it: a successor
    with a trimmed vocabulary gets its own ids.

    Returns:
        ``(role -> metrics, role -> loader of the first dev split (prepared), dev examples,
        role -> share of its dev predictions in its most frequent class)``.
    """
    import numpy as np

    from theseus_cli.data.metrics import (
        compute_metrics,
        logits_to_predictions,
        task_score,
    )

    kind = kind_of(task)
    train_labels = training_labels(task, ctx)
    roles = [*models, "majority"]
    scores: dict = {role: {} for role in roles}
    predictions: dict = {role: [] for role in models}
    first_loaders: dict = {}
    examples = 0
    parts = [(split, "", "" if len(task.dev_splits) == 1 else "_" + split.removeprefix("dev_"))
             for split in task.dev_splits]  # (split, metric prefix, metric suffix)
    if getattr(task, "test_has_labels", lambda: False)():  # a user's labelled test file
        parts.append(("test", "test_", ""))
    for split, prefix, suffix in parts:
        dev = split != "test"
        loaders: dict = {}  # vocabulary -> (loader, examples)
        labels = None
        for role, model in models.items():
            tokenizer = tokenizers[role]
            key = vocabulary_key(tokenizer)
            if key not in loaders:
                ds = load_tokenized(ctx.config, task, tokenizer, split)
                loaders[key] = (ctx.runtime.prepare(make_dataloader(
                    ds, tokenizer, ctx.params.eval_batch_size, shuffle=False)), len(ds))
            loader, rows = loaders[key]
            if dev:
                first_loaders.setdefault(role, loader)
            logits, labels = predict(model, loader, ctx.runtime)
            preds = logits_to_predictions(task, logits)
            m = compute_metrics(task, preds, labels)
            if not np.isfinite(logits).all():
                m = {k: float("nan") for k in m}
            if dev:
                predictions[role].append(preds)
            scores[role].update({prefix + k + suffix: v for k, v in m.items()})
        examples += rows if dev else 0
        trivial = kind.trivial_predictions(train_labels, labels)  # the shape of labels
        scores["majority"].update({prefix + k + suffix: v for k, v in
                                   compute_metrics(task, trivial, labels).items()})
    for role in roles:  # from dev (the task's score metrics; test_ ones are not among them)
        scores[role]["score"] = task_score(task, scores[role])
    shares = {role: None if kind.token_level else top_class_share(task, np.concatenate(p))
              for role, p in predictions.items()}
    return scores, first_loaders, examples, shares


def training_labels(task, ctx: StageContext) -> list:
    """The training split's labels (a list of tag ids per row for a token-level kind):
    what the task kind's trivial reference row (majority class, training mean, most
    frequent tag) is drawn from."""
    return list(load_split(task, "train", ctx.config.glue_dir(),
                           max_samples=ctx.config.data.max_train_samples)["label"])


def top_class_share(task, predictions) -> float | None:
    """Share of ``predictions`` (shape (N,)) in their most frequent class; None for STS-B."""
    import numpy as np

    if task.is_regression or len(predictions) == 0:
        return None
    return float(np.bincount(predictions.astype(np.int64)).max() / len(predictions))


def degenerate_warning(role: str, metrics: dict, majority: dict, share: float | None,
                       trivial: str = "majority class") -> str | None:
    """A warning when a model answers (nearly) one class or scores near the task kind's
    trivial row (``trivial``: the majority class, the most frequent tag, ...); ``role``
    names the model, e.g. ``successor (MRPC/finetune-successor/v2, theseus 3L ...)``."""
    import math

    if share is not None and share >= DEGENERATE_SHARE:
        return (f"the {role} gives {100 * share:.1f}% one class on dev: it has learned little "
                "beyond the class prior")
    score, base = metrics.get("score"), majority.get("score")
    if score is not None and base is not None and math.isfinite(base) and math.isfinite(score) \
            and score - base < DEGENERATE_MARGIN:
        return (f"the {role} scores {100 * score:.2f} on dev, within a point of the {trivial} "
                f"({100 * base:.2f}): it has learned little beyond the class prior")
    return None


def predict_test(model, tokenizer, task, ctx: StageContext) -> dict:
    """Write the leaderboard files of every test split the model answers, and a zip.

    Returns:
        ``file name -> rows`` written under ``submission/`` of the artifact.
    """
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


def _pct(value) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}"


def render_markdown(report: dict, retention: float) -> str:
    """A Markdown table of one task's teacher vs successor comparison, with the
    majority-class baseline below them."""
    names = [k for k in report["metrics"]["teacher"] if k != "score"]
    head = ["model", "layers", "parameters", *names, "score", "retention", "speed-up"]
    rows = []
    for role in ("teacher", "successor"):
        m = report["metrics"][role]
        rows.append([f"{role} ({report[role]})", str(report["layers"][role]),
                     f"{report['parameters'][role]['total'] / 1e6:.1f}M",
                     *(_pct(m[k]) for k in names), _pct(m["score"]),
                     "100.0%" if role == "teacher" else (
                         f"{retention:.1f}%" if retention == retention else "n/a (teacher 0)"),
                     "1.00×" if role == "teacher" else f"{report['speed']['speedup']:.2f}×"])
    m = report["metrics"].get("majority")
    if m:
        rows.append([f"{report.get('trivial', 'majority class')} (training set's)", "—", "—",
                     *(_pct(m.get(k)) for k in names), _pct(m["score"]), "—", "—"])
    lines = [f"### {report['task']} dev ({report['dev_examples']} examples)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    s = report["speed"]
    lines += ["", f"Speed: {s['examples']} dev examples per pass, batch {s['batch_size']}, "
                  f"{s['device']}; median {s['teacher_seconds']:.3f} s (teacher) vs "
                  f"{s['successor_seconds']:.3f} s (successor)."]
    return "\n".join(lines) + "\n"
