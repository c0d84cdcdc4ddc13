"""Training budgets that fit the data: early stopping on the dev score, the replacing ramp as
a fraction of the stage's steps, and the warnings about a weak or undertrained teacher."""

from __future__ import annotations

from pathlib import Path

from conftest import FAST, cli, flat, manifest, set_yaml

from theseus_cli.plugin.training import TrainOutcome


def _outcome(scores: list[float], best_step: int, reason: str = "max_epochs") -> TrainOutcome:
    evaluations = [{"step": 10 * (i + 1), "dev_score": s} for i, s in enumerate(scores)]
    return TrainOutcome(max(scores), {}, best_step, 10 * len(scores), 1.0, evaluations,
                        stop_reason=reason, steps_per_epoch=10)


def test_still_rising_only_when_the_last_evaluation_is_the_best_of_a_run_at_its_maximum():
    assert _outcome([0.5, 0.6, 0.7], best_step=30).still_rising
    assert not _outcome([0.5, 0.7, 0.6], best_step=20).still_rising
    assert not _outcome([0.5, 0.6, 0.7], best_step=30, reason="patience").still_rising
    assert not _outcome([0.7], best_step=10).still_rising
    record = _outcome([0.5, 0.7, 0.6], best_step=20).stop_record()
    assert record == {"stop_reason": "max_epochs", "stopped_at_step": 30,
                      "stopped_at_epoch": 3.0, "best_step": 20, "best_epoch": 2.0,
                      "steps_per_epoch": 10}


def _skewed_task(tmp_path, model_dir) -> Path:
    """A user's CSV task, 90% one class in train and validation: a teacher that learns
    nothing scores at (or below) the majority class."""
    import csv
    import random

    rng = random.Random(0)
    words = "the a of cat dog milk city river town bread horse school".split()
    for name, n in (("train", 60), ("dev", 20)):
        with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(("text", "label"))
            w.writerows((" ".join(rng.choice(words) for _ in range(6)),
                         "rare" if i % 10 == 9 else "common") for i in range(n))
    ws = tmp_path / "skewed"
    cli("init", ws, "--model", model_dir, "--task", "skewed", "--train", tmp_path / "train.csv",
        "--validation", tmp_path / "dev.csv")
    set_yaml(ws, FAST)
    return ws


def test_teacher_stops_when_dev_stops_improving_and_warns_when_weak(tmp_path, tiny_model_dir):
    """Learning rate 0: the dev score never improves after the first evaluation, so patience
    1 stops the teacher at the second of its 6 epochs; it stays at the majority class, which
    is warned about, recorded, repeated by replace and shown under evaluate's table."""
    ws = _skewed_task(tmp_path, tiny_model_dir)
    set_yaml(ws, {"finetune-teacher": {"epochs": 6, "patience": 1, "learning_rate": 0.0}})
    out = flat(cli("finetune-teacher", "-w", ws).output)
    info = manifest(ws, "finetune-teacher", task="skewed")["info"]
    spe = info["steps_per_epoch"]
    assert info["stop_reason"] == "patience"
    assert info["stopped_at_step"] == 2 * spe and info["optimizer_steps"] == 2 * spe
    assert info["best_step"] == spe and info["best_epoch"] == 1.0
    assert info["learning_rate"] == 0.0 and info["trivial_score"] == 0.9
    assert f"stopped at step {2 * spe} (epoch 2.00) by early stop" in out
    assert f"best dev score at step {spe} (epoch 1)" in out
    assert any("weak teacher" in w and "majority class" in w for w in info["warnings"])
    assert "warning: weak teacher" in out and "--learning-rate" in out
    set_yaml(ws, {"replace": {"epochs": 1}})
    out = flat(cli("replace", "-w", ws).output)
    assert "warning: the teacher skewed/finetune-teacher/v1: weak teacher" in out
    out = flat(cli("evaluate", "-w", ws).output)
    assert "warning: teacher (fine-tuned predecessor): weak teacher" in out


def test_teacher_learning_rate_by_model_size(workspace):
    """No learning rate set: the tiny model (hidden size below 768) trains at 1e-4."""
    set_yaml(workspace, {"finetune-teacher": {"learning_rate": None}})
    out = flat(cli("finetune-teacher", "-w", workspace).output)
    m = manifest(workspace, "finetune-teacher")
    assert m["params"]["learning_rate"] is None and m["info"]["learning_rate"] == 1e-4
    assert "learning rate 0.0001 (by hidden size)" in out
    from theseus_builtin.stages.learning_rate import default_learning_rate
    assert [default_learning_rate(h) for h in (384, 768, 1024, None)] == [1e-4, 5e-5, 2e-5, 5e-5]


def test_replace_patience_counts_from_the_step_where_p_reaches_one(workspace):
    """p = 1 at 75% of 4 epochs (the start of epoch 4... of step 3 epochs in): the evaluation
    at epoch 2 does not improve but does not count; the one at epoch 3 does, and stops."""
    cli("finetune-teacher", "-w", workspace)
    set_yaml(workspace, {"replace": {"epochs": 4, "patience": 1, "learning_rate": 0.0,
                                     "distill_weight": 0.0,
                                     "schedulers": {"linear": {"steps_to_one": None,
                                                               "fraction_to_one": 0.75}}}})
    cli("replace", "-w", workspace)
    info = manifest(workspace, "replace")["info"]
    spe = info["steps_per_epoch"]
    assert info["patience_from_step"] == 3 * spe
    assert info["stop_reason"] == "patience" and info["stopped_at_step"] == 3 * spe
    assert info["best_step"] == spe


def test_beaten_teacher_is_warned_about():
    from theseus_builtin.stages.method_table import beaten_teacher_warnings

    def row(median, std, n, params=1):
        return {"method": "theseus 3L", "parameters": params,
                "score": {"median": median, "std": std, "n": n}}

    teacher = row(0.70, 0.0, 1)
    assert beaten_teacher_warnings(teacher, [row(0.75, 0.01, 3)])  # +5 points, spread 1
    assert not beaten_teacher_warnings(teacher, [row(0.75, 0.08, 3)])  # within the spread
    assert not beaten_teacher_warnings(teacher, [row(0.705, 0.0, 1)])  # half a point
    assert not beaten_teacher_warnings(teacher, [row(0.9, 0.0, 1, params=None)])  # trivial row


def test_undertrained_and_weak_teacher_warnings_name_the_settings_to_try():
    """The texts finetune-teacher records: still rising at its maximum names --epochs
    (twice the maximum); near the trivial row names --learning-rate (an adopted teacher,
    with no learning rate of ours, is told to check the model instead)."""
    from types import SimpleNamespace

    from theseus_builtin.stages.finetune_teacher import weak_teacher_warnings
    from theseus_cli.data.glue import get_task

    ctx = SimpleNamespace(task_definition=get_task("MRPC"), params=SimpleNamespace(epochs=10))
    rising = _outcome([0.5, 0.6, 0.7], best_step=30)
    [w] = weak_teacher_warnings(0.7, 0.25, ctx, outcome=rising, learning_rate=1e-4)
    assert w.startswith("undertrained teacher") and "--epochs 20" in w and "epoch 3" in w
    assert weak_teacher_warnings(0.7, 0.25, ctx, outcome=_outcome([0.7, 0.6], 10)) == []
    [w] = weak_teacher_warnings(0.255, 0.25, ctx, learning_rate=1e-4)
    assert "within a point of the majority class (25.00)" in w and "now 0.0001" in w
    [w] = weak_teacher_warnings(0.255, 0.25, ctx)
    assert "check that the adopted model was fine-tuned on this task" in w


def test_finetune_successor_keeps_its_input_when_no_epoch_beats_it(workspace, monkeypatch):
    """finetune-successor scores the replaced successor at step 0: with every later dev
    evaluation made to score lower, it publishes its input's weights and score unchanged
    (it used to keep the best of its own epochs, below what it started from)."""
    from safetensors.torch import load_file

    from theseus_cli.train import loop

    cli("finetune-teacher", "-w", workspace)
    cli("replace", "-w", workspace)
    set_yaml(workspace, {"finetune-successor": {"epochs": 2, "learning_rate": 1e-2}})
    real, calls = loop.evaluate, []

    def worse_after_the_first(*args, **kwargs):
        metrics = real(*args, **kwargs)
        if calls:
            metrics["score"] -= 0.5
        calls.append(metrics["score"])
        return metrics

    monkeypatch.setattr(loop, "evaluate", worse_after_the_first)
    out = flat(cli("finetune-successor", "-w", workspace).output)
    m = manifest(workspace, "finetune-successor")
    assert [e["step"] for e in m["info"]["evaluations"]][:1] == [0] and len(calls) == 3
    assert m["info"]["best_step"] == 0 and m["metrics"]["score"] == calls[0]
    assert "the input before any training (kept unchanged" in out
    art = workspace / "artifacts" / "MRPC"
    before = load_file(art / "replace/v1/model/model.safetensors")
    after = load_file(art / "finetune-successor/v1/model/model.safetensors")
    assert before.keys() == after.keys()
    assert all(before[k].equal(after[k]) for k in before)


def test_finetune_successor_keeps_an_epoch_that_beats_its_input(workspace):
    """The step-0 score is only the one to beat: a normal run still keeps a later epoch
    when it scores higher, and the step-0 evaluation is recorded first."""
    cli("finetune-teacher", "-w", workspace)
    cli("replace", "-w", workspace)
    cli("finetune-successor", "-w", workspace)
    info = manifest(workspace, "finetune-successor")["info"]
    scores = [e["dev_score"] for e in info["evaluations"]]
    assert info["evaluations"][0]["step"] == 0 and len(scores) == 2
    assert max(scores) == scores[[e["step"] for e in info["evaluations"]].index(info["best_step"])]


def test_the_method_table_warns_of_a_successor_still_rising_at_its_maximum():
    """A baseline cut off while improving (PKD at 5e-5 on Banking77 rose to its last
    epoch) is named in evaluate's table, with the settings to try; one stopped by
    patience, or whose last evaluation was not its best, is not."""
    from types import SimpleNamespace

    from theseus_builtin.stages.method_table import undertrained_warnings

    evaluations = [{"step": 10, "dev_score": 0.5}, {"step": 20, "dev_score": 0.6},
                   {"step": 30, "dev_score": 0.7}]
    infos = {"pkd": {"stop_reason": "max_epochs", "best_step": 30, "best_epoch": 3.0,
                     "evaluations": evaluations},
             "truncate": {"stop_reason": "patience", "best_step": 30, "best_epoch": 3.0,
                          "evaluations": evaluations},
             "distill": {"stop_reason": "max_epochs", "best_step": 20, "best_epoch": 2.0,
                         "evaluations": evaluations}}
    store = SimpleNamespace(get=lambda task, stage, version: SimpleNamespace(
        stage=stage, label=f"{task}/{stage}/{version}",
        manifest={"info": infos[stage], "params": {"epochs": 3}}))
    evs = [SimpleNamespace(task="MRPC", manifest={"params": {"successor": s},
                                                   "inputs": {s: {"version": "v1"}}})
           for s in infos]
    assert undertrained_warnings(store, evs) == [
        "undertrained: MRPC/pkd/v1 had its best dev score at its last evaluation (epoch 3.0, "
        "the maximum), still rising; try pkd --epochs 6 or a higher --learning-rate"]
