"""``--report-to``: experiment trackers through Accelerate, off by default, never in the
fingerprint; TensorBoard receives the training curves and the final metrics."""

from __future__ import annotations

import pytest
from badinputs import fails
from conftest import cli, flat, manifest, set_yaml, versions


def _scalars(run_dir) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_off_by_default(workspace):
    cli("finetune-teacher", "-w", workspace)
    assert not (workspace / "tracking").exists()
    assert "report_to" not in manifest(workspace, "finetune-teacher")["config"]["runtime"]


def test_tensorboard_gets_curves_and_metrics_and_leaves_the_fingerprint(workspace):
    pytest.importorskip("tensorboard")
    set_yaml(workspace, {"finetune-teacher": {"eval_every": 2}})
    cli("finetune-teacher", "-w", workspace, "--report-to", "tensorboard")
    runs = [d for d in (workspace / "tracking").iterdir() if d.is_dir()]
    assert len(runs) == 1 and runs[0].name.startswith("MRPC-finetune-teacher-")
    scalars = _scalars(runs[0])
    loss = scalars["train/loss"]
    assert len(loss) >= 2 and [s for s, _ in loss] == sorted(s for s, _ in loss)
    assert "eval/dev_score" in scalars
    assert "final/" + next(iter(manifest(workspace, "finetune-teacher")["metrics"])) in scalars
    # where metrics are also sent is not part of the result: the same run is up to date
    out = flat(cli("finetune-teacher", "-w", workspace).output)
    assert "is up to date" in out and versions(workspace, "finetune-teacher") == ["v1"]


def test_unknown_or_missing_tracker_is_named(workspace, monkeypatch):
    fails(workspace, ["finetune-teacher", "--report-to", "neptune"], 2,
          "--report-to 'neptune': unknown tracker", "accepted: none, tensorboard, mlflow, wandb")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    fails(workspace, ["finetune-teacher", "--report-to", "wandb"], 2,
          "the package 'wandb' is not installed", "pip install wandb")
