"""Faults during and after a run: divergence, corrupted artifacts, broken plugins,
published file modes and signals (cases V, I, P, F and S of the catalogue in the
docstring of tests/test_bad_inputs.py)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import procs
import pytest
from badinputs import art, expect, fails, flip, published
from conftest import (
    cli,
    copy_workspace,
    flat,
    make_workspace,
    set_yaml,
    versions,
    write_glue,
)


@pytest.fixture
def corrupt_ws(trained, tmp_path) -> Path:
    """A private copy of the workspace that ran the whole MRPC pipeline."""
    return copy_workspace(trained[0], tmp_path / "ws")


# ---------------------------------------------------- V: divergence (exit 3)
@pytest.mark.parametrize("case,stage", [("V1", "finetune-teacher"), ("V2", "replace"),
                                        ("V3", "finetune-successor")])
def test_diverged_training_publishes_nothing(corrupt_ws, case, stage):
    text = fails(corrupt_ws, [stage, "--learning-rate", "1e6", "--force"], 3,
                 f"MRPC/{stage} diverged: the training loss is nan on optimizer step",
                 "last finite loss", "learning rate", "Nothing was published",
                 "Rerun with a lower learning rate, e.g. --learning-rate 5e-5")
    assert "peak 1e+06" in text
    assert versions(corrupt_ws, stage) == ["v1"]
    assert not list((corrupt_ws / "artifacts").rglob(".staging-*"))


def test_V4_a_predecessor_with_nan_weights(workspace, models):
    set_yaml(workspace, {"model": str(models["nan"])})
    fails(workspace, ["finetune-teacher"], 3, "diverged: the training loss is nan on optimizer step 1",
          "no finite loss yet")


def test_V5_every_dev_evaluation_nan(tmp_path, tiny_model_dir):
    glue = write_glue(tmp_path / "glue")
    dev = glue / "STS-B" / "dev.tsv"
    lines = dev.read_text().splitlines()
    dev.write_text("\n".join([lines[0]] + [ln.rsplit("\t", 1)[0] + "\t2.500" for ln in lines[1:]]) + "\n")
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue)
    set_yaml(ws, {"task": "STS-B"})
    fails(ws, ["finetune-teacher"], 3, "STS-B/finetune-teacher: no dev evaluation gave a finite score",
          "Nothing was published")


def test_V6_checkpoint_before_the_divergence_is_kept(workspace):
    args = ["finetune-teacher", "--learning-rate", "1e6", "--warmup-ratio", "0.5", "--save-every",
            "1", "--epochs", "3"]  # the warm-up delays the divergence past a few checkpoints
    first = fails(workspace, args, 3, "diverged", "the last checkpoint from before the divergence "
                  "is kept", "--restart discards it")
    pointer = list((workspace / "artifacts" / "MRPC" / "finetune-teacher").glob(".checkpoints-*/*/LATEST"))
    assert len(pointer) == 1
    kept = int(pointer[0].read_text().split("-")[1])
    step = int(first.split("nan on optimizer step ")[1].split()[0])
    assert 0 < kept < step
    again = fails(workspace, args, 3, f"resuming MRPC/finetune-teacher from step {kept}")
    assert f"optimizer step {step} " in again  # deterministic: the same step diverges


def test_V7_fp16_tolerates_skipped_steps_then_diverges():
    from theseus_cli.errors import TrainingDivergedError
    from theseus_cli.train.divergence import DivergenceGuard

    class Runtime:
        precision, num_processes = "fp16", 1

        def any_process(self, flag):
            return flag

    guard = DivergenceGuard("MRPC/replace", Runtime(), 2e-5)
    guard.after_step(1, [0.7], 2e-5)
    for step in range(2, 12):  # 10 non-finite steps: the loss scaler's business
        guard.after_step(step, [float("inf")], 2e-5)
    assert not guard.healthy
    guard.after_step(12, [0.6], 2e-5)  # recovered
    assert guard.healthy
    for step in range(13, 23):
        guard.after_step(step, [float("nan")], 2e-5)
    with pytest.raises(TrainingDivergedError, match="stays|nan on optimizer step 23"):
        guard.after_step(23, [float("nan")], 2e-5)
    fp32 = DivergenceGuard("MRPC/replace", type("R", (Runtime,), {"precision": "no"})(), 2e-5)
    with pytest.raises(TrainingDivergedError, match="last finite loss 0.5 at step 1"):
        fp32.after_step(1, [0.5], 2e-5), fp32.after_step(2, [float("nan")], 2e-5)


def test_V8_non_finite_weights_are_never_published(tmp_path):
    import torch
    from safetensors.torch import save_file

    from theseus_cli.errors import TrainingDivergedError
    from theseus_cli.store.integrity import check_finite_weights

    (tmp_path / "model").mkdir()
    save_file({"a": torch.ones(3), "b": torch.tensor([1.0, float("inf"), float("nan")])},
              str(tmp_path / "model" / "model.safetensors"))
    with pytest.raises(TrainingDivergedError, match="model/model.safetensors: tensor 'b' has 2 "
                                                    r"non-finite values \(1 NaN, 1 infinite\) of 3"):
        check_finite_weights(tmp_path)


def test_V9_every_json_written_is_strict(trained):
    def reject(token):
        raise AssertionError(f"non-standard JSON {token}")

    files = [p for p in (trained[0] / "artifacts").rglob("*") if p.suffix in (".json", ".jsonl")]
    assert len(files) > 10
    for path in files:
        for line in (path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]):
            json.loads(line, parse_constant=reject)
    from theseus_cli.store.jsonio import dumps
    assert json.loads(dumps({"retention": float("nan")})) == {
        "retention": None, "non_finite": {"retention": "nan"}}


# --------------------------------------------------- I: integrity (exit 4)
RECOVER = "rerun the stage that made it with `theseus"
INTEGRITY_CASES = [
    ("I1", lambda ws: flip(art(ws, "replace", "model/model.safetensors")),
     ["finetune-successor", "--force"],
     ["MRPC/replace/v1 is corrupted: model/model.safetensors: sha256 differs",
      "theseus replace --task MRPC --force"]),
    ("I2", lambda ws: art(ws, "finetune-teacher", "model/config.json").write_text("{}"),
     ["evaluate", "--force"],
     ["MRPC/finetune-teacher/v1 (an ancestor of MRPC/finetune-successor/v1) is corrupted: "
      "model/config.json"]),
    ("I3", lambda ws: art(ws, "finetune-successor", "model/tokenizer.json").unlink(),
     ["evaluate", "--force"], ["model/tokenizer.json: missing (the manifest lists it)"]),
    ("I4", lambda ws: art(ws, "replace", "manifest.json").write_text(
        art(ws, "replace", "manifest.json").read_text().replace('"best_step"', '"best_stepx"')),
     ["finetune-successor", "--force"], ["MRPC/replace/v1 is corrupted: manifest.json was edited"]),
    ("I5", lambda ws: art(ws, "finetune-teacher", "manifest.json").write_text(
        art(ws, "finetune-teacher", "manifest.json").read_text() + " "),
     ["evaluate", "--force"], ["finetune-teacher/v1 (an ancestor of", "manifest.json was edited"]),
    ("I6", lambda ws: art(ws, "replace", "model/model.safetensors").write_bytes(
        art(ws, "replace", "model/model.safetensors").read_bytes()[:1000]),
     ["finetune-successor", "--force"], ["model/model.safetensors: 1000 bytes, the manifest records"]),
    ("I7", lambda ws: art(ws, "replace", "manifest.json").write_text("{not json"),
     ["finetune-successor", "--force"], ["MRPC/replace/v1 is corrupted: manifest.json is unreadable"]),
    ("I8", lambda ws: flip(art(ws, "replace", "model/config.json"), 5),
     ["finetune-successor", "--from", "replace=v1", "--force"], ["replace/v1 is corrupted"]),
    ("I9", lambda ws: flip(art(ws, "finetune-successor", "model/model.safetensors")),
     ["export", "--force"], ["finetune-successor/v1 (an ancestor of MRPC/evaluate/v1) is corrupted"]),
]


@pytest.mark.parametrize("case,damage,args,needles", INTEGRITY_CASES,
                         ids=[c[0] for c in INTEGRITY_CASES])
def test_corrupted_artifacts_are_never_read(corrupt_ws, case, damage, args, needles):
    damage(corrupt_ws)
    fails(corrupt_ws, args, 4, *needles, RECOVER, "Nothing was read from it")
    stage = args[0]
    assert versions(corrupt_ws, stage) == ["v1"]


def test_I10_changed_bytes_with_the_old_mtime_are_still_caught(corrupt_ws):
    weights = art(corrupt_ws, "replace", "model/model.safetensors")
    assert cli("verify", "-w", corrupt_ws).exit_code == 0  # fills the hash cache
    st = weights.stat()
    flip(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before
    fails(corrupt_ws, ["finetune-successor", "--force"], 4, "model/model.safetensors: sha256 differs")


def test_I11_I12_I13_verify_and_status(corrupt_ws):
    n = len(list((corrupt_ws / "artifacts").glob("*/*/v*/manifest.json")))
    assert n >= 6  # the five stages of MRPC and the GLUE table (the shared workspace may have more)
    text = expect(cli("verify", "-w", corrupt_ws), 0, f"all {n} versions match their manifests")
    assert "MRPC/export/v1" in text
    flip(art(corrupt_ws, "finetune-teacher", "model/model.safetensors"))
    before = published(corrupt_ws)
    expect(cli("verify", "-w", corrupt_ws, ok=False), 4,
           f"1 of {n} versions do not match their manifests: MRPC/finetune-teacher/v1",
           "model/model.safetensors: sha256 differs", "theseus finetune-teacher --task MRPC --force")
    expect(cli("status", "-w", corrupt_ws), 0, "v1 (corrupted)", "v1 CORRUPTED: "
           "model/model.safetensors: sha256 differs", "theseus verify")
    assert published(corrupt_ws) == before


def test_I14_rerunning_the_producing_stage_publishes_a_new_version(corrupt_ws):
    flip(art(corrupt_ws, "replace", "model/model.safetensors"))
    text = expect(cli("replace", "-w", corrupt_ws), 0, "MRPC/replace/v1 is corrupted",
                  "running replace again", "published MRPC/replace/v2")
    assert "up to date" not in text
    expect(cli("finetune-successor", "-w", corrupt_ws), 0, "published MRPC/finetune-successor/v2")


# ------------------------------------------------------------- P: plugins
def _plugin_env(tmp_path: Path, source: str, entry_points: str) -> dict[str, str]:
    site = tmp_path / "site"
    (site / "badplug").mkdir(parents=True)
    (site / "badplug" / "__init__.py").write_text(source)
    dist = site / "badplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("case,source,needle", [
    ("P1", "import sys\nsys.exit(3)\n", "SystemExit(3) while importing"),
    ("P2", "raise RuntimeError('boom')\n", "RuntimeError: boom"),
])
def test_a_plugin_cannot_take_the_cli_down(tmp_path, case, source, needle):
    env = _plugin_env(tmp_path, source, "[theseus.schedulers]\nbad = badplug:Bad\n")
    helped = procs.run(procs.theseus("--help"), **env)
    assert helped.returncode == 0 and "replace" in helped.stdout, helped.stdout
    listed = procs.run(procs.theseus("plugins"), **env)
    assert listed.returncode == 0, listed.stdout
    assert needle in flat(listed.stdout) and "broken" in listed.stdout


SCHEDULER = """
from dataclasses import dataclass
from theseus_cli.plugin import Scheduler

class Bad(Scheduler):
    name = "bad"

    @dataclass
    class Params:
        pass

    def rate(self, step):
        {body}
"""


@pytest.mark.parametrize("case,body,needle", [
    ("P3", "return 1.5", "scheduler 'bad' returned rate 1.5 at optimizer step 0"),
    ("P4", "return float('nan')", "scheduler 'bad' returned rate nan at optimizer step 0"),
    ("P5", "raise ZeroDivisionError('oops')",
     "scheduler 'bad' failed at optimizer step 0: ZeroDivisionError: oops"),
])
def test_a_scheduler_breaking_its_contract_is_named(corrupt_ws, tmp_path, case, body, needle):
    env = _plugin_env(tmp_path, SCHEDULER.format(body=body), "[theseus.schedulers]\nbad = badplug:Bad\n")
    before = published(corrupt_ws)
    result = procs.run(procs.theseus("replace", "--scheduler", "bad", "-w", corrupt_ws), **env)
    assert result.returncode == 1, result.stdout
    assert needle in flat(result.stdout) and "Traceback" not in result.stdout
    assert published(corrupt_ws) == before


def test_P6_P7_uninstalled_plugins_named_in_theseus_yaml(workspace):
    set_yaml(workspace, {"replace": {"schedulers": {"cosine": {"t0": 5}}}})
    expect(cli("status", "-w", workspace), 0, "warning: ", "replace.schedulers.cosine: scheduler "
           "'cosine' is not installed (available: anti-curriculum, constant, linear); "
           "its arguments are ignored")
    set_yaml(workspace, {"replace": {"scheduler": "cosine"}})
    expect(cli("status", "-w", workspace), 0, "replace.scheduler: scheduler 'cosine' is not installed")
    fails(workspace, ["replace"], 2,
          "unknown scheduler 'cosine'; available: anti-curriculum, constant, linear")


# ----------------------------------------------------------- F: published files
def test_F1_published_files_follow_the_umask(trained):
    mask = os.umask(0)
    os.umask(mask)
    for path in (trained[0] / "artifacts").glob("*/*/v*/**/*"):
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == want, path
    assert (art(trained[0], "export", "model/model.safetensors").stat().st_mode & 0o777) == 0o666 & ~mask


# --------------------------------------------------------------- S: signals
ARGS = ("finetune-teacher", "--epochs", "8", "--batch-size", "4", "--save-every", "3")


@pytest.mark.parametrize("case,sig,code,name", [("S1", signal.SIGTERM, 143, "SIGTERM"),
                                                ("S2", signal.SIGINT, 130, "SIGINT")])
def test_a_signal_ends_a_run_resumably(tmp_path, tiny_model_dir, glue_dir, case, sig, code, name):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue_dir)
    proc = procs.start(procs.theseus(*ARGS, "-w", ws), tmp_path / "run.log")
    stage = ws / "artifacts" / "MRPC" / "finetune-teacher"
    procs.wait_for(lambda: list(stage.glob(".checkpoints-*/*/LATEST")), proc, what="a checkpoint")
    os.kill(proc.pid, sig)
    status = proc.wait(timeout=procs.TIMEOUT)
    out = flat((tmp_path / "run.log").read_text())
    assert status == code, out  # the log names the cause if the interrupt path was missed
    assert f"interrupted by {name}: nothing was published; rerun the same command to resume" in out
    assert "Traceback" not in out
    assert versions(ws, "finetune-teacher") == [] and not list(stage.glob(".staging-*"))
    resumed = procs.run(procs.theseus(*ARGS, "-w", ws))  # the same command resumes
    assert resumed.returncode == 0, resumed.stdout
    assert "resuming MRPC/finetune-teacher from step" in flat(resumed.stdout)
    assert versions(ws, "finetune-teacher") == ["v1"]


def test_S3_sigterm_during_publish_publishes_nothing(tmp_path, workspace):
    marker = tmp_path / "hold"
    proc = procs.start(procs.theseus("finetune-teacher", "-w", workspace), tmp_path / "run.log",
                       THESEUS_TEST_HOLD_PUBLISH=str(marker))
    procs.wait_for(marker.exists, proc, what="the publish hold")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=procs.TIMEOUT) == 143
    stage = workspace / "artifacts" / "MRPC" / "finetune-teacher"
    assert versions(workspace, "finetune-teacher") == [] and not list(stage.glob(".staging-*"))
    assert "interrupted by SIGTERM" in flat((tmp_path / "run.log").read_text())


def test_V10_export_compares_logits_nan_aware():
    import torch

    from theseus_builtin.stages.export import TOLERANCE, logits_difference

    a = torch.tensor([[0.5, -0.5]])
    assert logits_difference(a, a.clone()) == 0.0
    nan = torch.tensor([[float("nan"), 0.0]])
    diff = logits_difference(nan, nan.clone())
    assert not diff <= TOLERANCE  # `nan > tolerance` is False: the old check passed this


def test_S4_a_signal_ends_an_evaluation_of_several_successors(trained, tmp_path, monkeypatch):
    """``evaluate`` over several successors stops at the first signal (exit 143): the
    signal is not one failed item among others."""
    from theseus_builtin.stages.evaluate import Evaluate
    from theseus_cli.errors import StageInterrupted

    ws = copy_workspace(trained[0], tmp_path / "ws")
    cli("truncate", "-w", ws)
    calls = []

    def interrupted(self, ctx):
        calls.append(ctx.params.successor)
        raise StageInterrupted(signal.SIGTERM)

    monkeypatch.setattr(Evaluate, "run", interrupted)
    result = cli("evaluate", "-w", ws, "--force", ok=False)
    assert result.exit_code == 143 and len(calls) == 1, (calls, result.output)
    assert "interrupted by SIGTERM" in flat(result.output)


def test_one_failed_evaluation_is_reported_once(trained, tmp_path, monkeypatch):
    from theseus_builtin.stages.evaluate import Evaluate
    from theseus_cli.errors import DataError

    ws = copy_workspace(trained[0], tmp_path / "ws")

    def broken(self, ctx):
        raise DataError("the dev file changed under us")

    monkeypatch.setattr(Evaluate, "run", broken)
    result = cli("evaluate", "-w", ws, "--force", ok=False)
    assert result.exit_code != 0
    assert flat(result.output).count("the dev file changed under us") == 1, result.output
