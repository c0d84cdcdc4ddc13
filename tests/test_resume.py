"""Resume after a real SIGKILL, and kills in the middle of a publish (subprocesses, no mocks)."""

from __future__ import annotations

import json
import os
import signal

import procs
from conftest import cli, flat, make_workspace, versions

from theseus_cli.store.artifacts import ArtifactStore

STAGE = "finetune-teacher"
# 48 training rows / batch 4 = 12 optimizer steps per epoch; 6 epochs = 72 steps;
# a checkpoint every 5 steps falls mid-epoch (5, 10, 15, ...); no early stop: all 72 run
ARGS = (STAGE, "--epochs", "6", "--batch-size", "4", "--save-every", "5", "--patience", "99")
STEPS_PER_EPOCH, TOTAL = 12, 72


def _latest_checkpoints(ws):
    return list((ws / "artifacts" / "MRPC" / STAGE).glob(".checkpoints-*/*/LATEST"))


def test_sigkill_mid_epoch_then_rerun_is_bitwise_identical(tmp_path, tiny_model_dir, glue_dir):
    ref = make_workspace(tmp_path / "ref", tiny_model_dir, glue_dir)
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue_dir)

    # an uninterrupted run, same seed, in another workspace
    done = procs.run(procs.theseus(*ARGS, "-w", ref))
    assert done.returncode == 0, done.stdout
    assert "resuming" not in done.stdout

    # the same command, killed with SIGKILL once a checkpoint exists
    proc = procs.start(procs.theseus(*ARGS, "-w", ws), tmp_path / "killed.log")
    procs.wait_for(lambda: _latest_checkpoints(ws), proc, what="the first checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=procs.TIMEOUT) == -signal.SIGKILL
    assert versions(ws, STAGE) == []
    [pointer] = _latest_checkpoints(ws)
    step = int(pointer.read_text().strip().split("-")[1])
    assert 0 < step < TOTAL and step % STEPS_PER_EPOCH != 0  # killed mid-epoch, not at the end

    # rerunning the same command continues from that checkpoint and says so
    resumed = procs.run(procs.theseus(*ARGS, "-w", ws))
    assert resumed.returncode == 0, resumed.stdout
    assert f"resuming MRPC/{STAGE} from step {step} (checkpoint " in flat(resumed.stdout)
    assert versions(ws, STAGE) == ["v1"]
    assert not _latest_checkpoints(ws)  # checkpoints are dropped once published

    a = ref / "artifacts" / "MRPC" / STAGE / "v1"
    b = ws / "artifacts" / "MRPC" / STAGE / "v1"
    weights = "model/model.safetensors"
    assert (a / weights).read_bytes() == (b / weights).read_bytes()  # bitwise identical
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert ma["metrics"] == mb["metrics"]
    assert ma["info"]["evaluations"] == mb["info"]["evaluations"]
    assert ma["info"]["optimizer_steps"] == mb["info"]["optimizer_steps"] == TOTAL
    # the step-by-step log too: same losses and learning rates at every step
    ra, rb = procs.records(a / "metrics.jsonl"), procs.records(b / "metrics.jsonl")
    assert len([r for r in ra if r["event"] == "train"]) == TOTAL
    assert ra == rb


def test_restart_discards_the_checkpoint(tmp_path, tiny_model_dir, glue_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue_dir)
    proc = procs.start(procs.theseus(*ARGS, "-w", ws), tmp_path / "killed.log")
    procs.wait_for(lambda: _latest_checkpoints(ws), proc, what="the first checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=procs.TIMEOUT)
    out = flat(cli(*ARGS, "-w", ws, "--restart").output)
    assert f"--restart: discarding the checkpoints of MRPC/{STAGE}" in out
    assert "resuming" not in out
    assert versions(ws, STAGE) == ["v1"]


def test_kill_during_publish_never_lists_a_partial_version(tmp_path, workspace):
    marker = tmp_path / "publishing"
    store = ArtifactStore(workspace / "artifacts")
    proc = procs.start(procs.theseus(STAGE, "-w", workspace), tmp_path / "killed.log",
                       THESEUS_TEST_HOLD_PUBLISH=str(marker))
    procs.wait_for(marker.exists, proc, what="the publish")
    # inside publish: the manifest is written, the version directory not renamed into place
    [staged] = (workspace / "artifacts" / "MRPC" / STAGE).glob(".staging-*")
    assert (staged / "manifest.json").is_file()
    assert store.versions("MRPC", STAGE) == [] and store.latest("MRPC", STAGE) is None
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=procs.TIMEOUT) == -signal.SIGKILL
    assert store.versions("MRPC", STAGE) == [] and versions(workspace, STAGE) == []
    # a downstream stage sees no finetune-teacher version either
    assert "needs a complete finetune-teacher artifact for MRPC and none exists" in flat(
        cli("replace", "-w", workspace, "--no-upstream", ok=False).output)

    # the rerun takes over the dead run's lock, says so, and publishes v1
    rerun = procs.run(procs.theseus(STAGE, "-w", workspace))
    assert rerun.returncode == 0, rerun.stdout
    assert (f"took over the lock of MRPC/{STAGE} left by pid {proc.pid}"
            in flat(rerun.stdout))
    [art] = store.versions("MRPC", STAGE)
    from theseus_cli.store.integrity import HashCache, check_artifact

    assert art.name == "v1" and check_artifact(art, HashCache(None)).ok
    assert not list((workspace / "artifacts").rglob(".staging-*"))
