"""Real multi-process runs on CPU (gloo): `--num-processes 2` (accelerate launch) and torchrun.

Each test starts two worker processes with one thread each; no mocks.
"""

from __future__ import annotations

import json
import socket
import sys

import procs
from conftest import cli, copy_workspace, flat, manifest, versions

REPLACE = ("replace", "--num-processes", "2", "--epochs", "3", "--successor-layers", "2",
           "--scheduler", "linear", "--scheduler-arg", "b=0.3",
           "--scheduler-arg", "steps_to_one=1000")


def _masks(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replace_on_two_processes_draws_the_same_masks_on_every_rank(tmp_path, workspace):
    cli("finetune-teacher", "-w", workspace)
    debug = tmp_path / "masks"
    done = procs.run(procs.theseus(*REPLACE, "-w", workspace), THESEUS_DEBUG_MASK_DIR=str(debug))
    assert done.returncode == 0, done.stdout
    out = flat(done.stdout)
    assert "launching 2 processes:" in out and "accelerate.commands.launch" in out

    rank0, rank1 = _masks(debug / "masks-rank0.jsonl"), _masks(debug / "masks-rank1.jsonl")
    # 48 rows, batch 8 per process, 2 processes: 3 optimizer steps per epoch, 3 epochs
    assert [m["step"] for m in rank0] == list(range(9))
    assert {m["rank"] for m in rank0} == {0} and {m["rank"] for m in rank1} == {1}
    assert [(m["step"], m["p"], m["mask"]) for m in rank0] == \
           [(m["step"], m["p"], m["mask"]) for m in rank1]
    all_predecessor = [m["step"] for m in rank0 if not any(m["mask"])]
    assert all_predecessor, "the run should include steps without any successor module"
    assert any(any(m["mask"]) for m in rank0)

    # one run, one artifact, written and announced by the main process only
    assert versions(workspace, "replace") == ["v1"]
    m = manifest(workspace, "replace")
    assert m["config"]["runtime"]["num_processes"] == 2 and m["info"]["optimizer_steps"] == 9
    assert out.count("published MRPC/replace/v1") == 1
    logged = [r for r in procs.records(workspace / "artifacts/MRPC/replace/v1/metrics.jsonl")
              if r["event"] == "train"]
    assert [r["mask"] for r in logged] == [m["mask"] for m in rank0]
    assert not list((workspace / "artifacts").rglob(".checkpoints-*"))


def test_two_process_evaluation_matches_one_process(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    odd = ("--max-eval-samples", "19", "--eval-batch-size", "4", "--force")  # 19: not even
    cli("evaluate", "-w", ws, *odd)
    done = procs.run(procs.theseus("evaluate", "-w", ws, *odd, "--num-processes", "2"))
    assert done.returncode == 0, done.stdout
    one, two = manifest(ws, "evaluate", "v2"), manifest(ws, "evaluate", "v3")
    assert one["config"]["runtime"]["num_processes"] == 1
    assert two["config"]["runtime"]["num_processes"] == 2
    for m in (one, two):
        report = json.loads((ws / "artifacts/MRPC/evaluate" / m["version"] / "report.json")
                            .read_text())
        assert report["dev_examples"] == 19
    scores = {k: v for k, v in one["metrics"].items() if k != "speedup"}
    assert scores == {k: v for k, v in two["metrics"].items() if k != "speedup"}
    assert "teacher_accuracy" in scores and "successor_f1" in scores


def test_torchrun_runs_a_stage_unchanged(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), "-m", "theseus_cli", "finetune-successor", "-w", ws,
           "--force"]
    done = procs.run(cmd)
    assert done.returncode == 0, done.stdout
    assert versions(ws, "finetune-successor") == ["v1", "v2"]
    m = manifest(ws, "finetune-successor", "v2")
    assert m["config"]["runtime"]["num_processes"] == 2
    assert flat(done.stdout).count("published MRPC/finetune-successor/v2") == 1


def test_two_process_tagging_evaluation_matches_one_process(tmp_path, tiny_model_dir):
    """Token classification: each process pads its batches to its own length; they are
    padded to a common one before gathering, and the scores equal one process's."""
    from test_token_classification import _init, sentences, write_conll

    d = tmp_path / "data"
    d.mkdir()
    files = {"train": write_conll(d / "train.conll", sentences(32, 0)),
             "validation": write_conll(d / "dev.conll", sentences(19, 1))}
    ws = _init(tmp_path / "ws", tiny_model_dir, files)
    cli("finetune-successor", "-w", ws, "--max-steps", "2")
    odd = ("--eval-batch-size", "4", "--force")
    cli("evaluate", "-w", ws, *odd)
    done = procs.run(procs.theseus("evaluate", "-w", ws, *odd, "--num-processes", "2"))
    assert done.returncode == 0, done.stdout
    one, two = (manifest(ws, "evaluate", v, task="ner") for v in ("v1", "v2"))
    assert two["config"]["runtime"]["num_processes"] == 2
    scores = {k: v for k, v in one["metrics"].items() if k != "speedup"}
    assert scores == {k: v for k, v in two["metrics"].items() if k != "speedup"}
    assert "successor_entity_f1" in scores
