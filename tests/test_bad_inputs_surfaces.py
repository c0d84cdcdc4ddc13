"""The bad-input catalogue, continued: the surfaces added since the first catalogue
(export and benchmark options, trackers, optional runtimes, predecessors with missing
weights, what ``verify`` sees, settings that do nothing). The case list is in the
docstring of tests/test_bad_inputs.py; every case runs ``theseus`` on a tiny random
model and asserts the exit status, the message naming the option or file and what to
do, no traceback, and the published versions unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from badinputs import art, expect, fails, published
from conftest import (
    cli,
    copy_workspace,
    flat,
    make_workspace,
    manifest,
    set_yaml,
    versions,
)

#: a package of this name shadows onnxruntime and fails to import (E7, E8)
BROKEN_ORT = 'raise ImportError("onnxruntime is broken on this machine (test)")\n'


def _without_onnxruntime(tmp_path: Path) -> dict[str, str]:
    shadow = tmp_path / "shadow"
    (shadow / "onnxruntime").mkdir(parents=True)
    (shadow / "onnxruntime" / "__init__.py").write_text(BROKEN_ORT)
    path = os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "300"}


def _theseus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "theseus_cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=600)


# ----------------------------------- E: options checked before any stage runs (exit 2)
def test_E1_nan_tolerance_is_refused_before_any_stage(workspace):
    fails(workspace, ["export", "--format", "hf,onnx", "--onnx-tolerance", "nan"], 2,
          "--onnx-tolerance: nan is not a finite number")
    assert versions(workspace, "finetune-teacher") == []  # nothing upstream ran either


def test_E2_output_naming_an_existing_directory(workspace, tmp_path):
    (tmp_path / "taken").mkdir()  # an empty one is taken (test_newcomer_surfaces); not this
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    fails(workspace, ["export", "--output", tmp_path / "taken"], 2,
          f"--output {tmp_path / 'taken'}", "already exists and is not empty",
          "choose another path")
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"
    assert versions(workspace, "finetune-teacher") == []


def test_E3_output_below_a_regular_file(workspace, tmp_path):
    (tmp_path / "file").write_text("x")
    fails(workspace, ["export", "--output", tmp_path / "file" / "out"], 2,
          f"--output {tmp_path / 'file' / 'out'}", "is a file", "inside a directory")
    assert (tmp_path / "file").read_text() == "x"


def test_E4_benchmark_lengths_beyond_the_model_positions(workspace):
    fails(workspace, ["benchmark", "--seq-lengths", "32,512"], 2,
          "--seq-lengths 32,512: 512 tokens exceed the 128 positions",
          "accepted: lengths up to 128")
    assert versions(workspace, "finetune-teacher") == []


@pytest.mark.parametrize("seeds", ["100000", ",".join(map(str, range(101)))])
def test_E5_seeds_are_capped_as_for_a_sweep(workspace, seeds):
    fails(workspace, ["finetune-teacher", "--seeds", seeds], 2, "at most 100"
          if "," in seeds else "--seeds 100000: the number of seeds must be 1 to 100")
    assert versions(workspace, "finetune-teacher") == []


def test_E6_tracker_directory_is_a_file(workspace):
    (workspace / "tracking").write_text("not a directory")
    fails(workspace, ["finetune-teacher", "--report-to", "tensorboard"], 2,
          "--report-to tensorboard: the trackers write to", "is a file",
          "--report-to none")
    assert versions(workspace, "finetune-teacher") == []


def test_E7_export_without_onnxruntime(workspace, tmp_path):
    before = published(workspace)
    done = _theseus(_without_onnxruntime(tmp_path), "export", "-w", workspace,
                    "--format", "hf,onnx")
    text = flat(done.stdout + done.stderr)
    assert done.returncode == 2, text
    for needle in ("--format hf,onnx needs the package 'onnxruntime'", "cannot be imported",
                   "pip install onnxruntime", "--format hf"):
        assert needle in text, (needle, text)
    assert "Traceback" not in text and published(workspace) == before


def test_E8_benchmark_without_onnxruntime(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    cli("export", "-w", ws, "--format", "hf,onnx")
    before = published(ws)
    done = _theseus(_without_onnxruntime(tmp_path), "benchmark", "-w", ws)
    text = flat(done.stdout + done.stderr)
    assert done.returncode == 2, text
    for needle in ("benchmark (the onnx exports, run by ONNX Runtime) needs the package "
                   "'onnxruntime'", "pip install onnxruntime", "--exports vN"):
        assert needle in text, (needle, text)
    assert "Traceback" not in text and published(ws) == before
    assert versions(ws, "benchmark") == []


# ----------------------------------------------------- M: model sources (exit 2)
def _copy_model(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_M13_predecessor_with_a_missing_tensor(tmp_path, tiny_model_dir, glue_dir):
    from safetensors.torch import load_file, save_file

    model = _copy_model(tiny_model_dir, tmp_path / "model")
    weights = load_file(model / "model.safetensors")
    gone = [k for k in weights if k.endswith("layer.0.attention.self.query.weight")]
    assert gone, sorted(weights)[:5]
    del weights[gone[0]]
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    ws = make_workspace(tmp_path / "ws", model, glue_dir)
    fails(ws, ["finetune-teacher"], 2, "1 missing (bert.encoder.layer.0.attention.self.query",
          "randomly initialised", "only the task head")
    assert versions(ws, "finetune-teacher") == []


def test_M14_a_head_of_another_task_is_the_known_exception(tmp_path, tiny_model_dir,
                                                          glue_dir):
    """A checkpoint with a 3-class head loads for MRPC's 2 classes: only its head is new."""
    from transformers import AutoModelForSequenceClassification

    other = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=3, ignore_mismatched_sizes=True)
    other.save_pretrained(tmp_path / "model")
    _copy_tokenizer(tiny_model_dir, tmp_path / "model")
    ws = make_workspace(tmp_path / "ws", tmp_path / "model", glue_dir)
    cli("finetune-teacher", "-w", ws)
    assert versions(ws, "finetune-teacher") == ["v1"]


def _copy_tokenizer(src: Path, dest: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(src).save_pretrained(dest)


def test_M15_git_lfs_pointer_in_place_of_the_weights(tmp_path, tiny_model_dir, glue_dir):
    model = _copy_model(tiny_model_dir, tmp_path / "model")
    (model / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n")
    ws = make_workspace(tmp_path / "ws", model, glue_dir)
    fails(ws, ["finetune-teacher"], 2, "is a Git LFS pointer file, not the model's weights",
          "git lfs pull")
    assert versions(ws, "finetune-teacher") == []


# -------------------------------------- I: what verify sees in a version (exit 4)
def _verify_fails(ws: Path, *needles: str) -> None:
    before = published(ws)
    expect(cli("verify", "-w", ws, ok=False), 4, *needles)
    assert published(ws) == before


def test_I15_version_without_its_manifest(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    (art(ws, "evaluate") / "manifest.json").unlink()
    _verify_fails(ws, "MRPC/evaluate/v1", "manifest.json is missing", "theseus evaluate")


def test_I16_file_the_manifest_does_not_list(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    (art(ws, "replace") / "notes.txt").write_text("added later")
    _verify_fails(ws, "MRPC/replace/v1", "notes.txt: not listed in the manifest")


def test_I17_symlink_leading_out_of_the_workspace(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    (tmp_path / "elsewhere.txt").write_text("outside")
    os.symlink(tmp_path / "elsewhere.txt", art(ws, "export") / "link.txt")
    _verify_fails(ws, "MRPC/export/v1", "link.txt: a symbolic link to",
                  "outside the workspace")


# ------------------------------- N: settings that do nothing are said (exit 0)
NOTHING_CASES = [
    ("N1", ["--scheduler-arg", "steps_to_one=1000"],
     ["scheduler linear steps_to_one=1000: p=1 only from optimizer step 1000, after the 6 "
      "steps of this run", "set steps_to_one below 6"]),
    ("N2", ["--successor", "low-rank", "--successor-arg", "rank=64"],
     ["low-rank rank=64: no linear map of a successor module is factorised",
      "unshrunk copy labelled low-rank", "a rank of at most 15 factorises every map"]),
    ("N3", ["--successor", "head-pruned", "--successor-arg", "head_fraction=0.1"],
     ["head-pruned head_fraction=0.1: 0.1 of 4 heads rounds to 0; each module keeps 1 instead"]),
]


@pytest.mark.parametrize("case,args,needles", NOTHING_CASES, ids=[c[0] for c in NOTHING_CASES])
def test_settings_that_do_nothing_are_said(trained, tmp_path, case, args, needles):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    text = flat(cli("replace", "-w", ws, "--force", *args).output)
    for needle in needles:
        assert f"warning: {needle}" in text or needle in text, (needle, text)
    recorded = " ".join(manifest(ws, "replace", "v2")["info"]["warnings"])
    assert needles[0] in recorded, recorded


def test_no_warning_when_every_setting_acts(trained):
    assert manifest(trained[0], "replace")["info"]["warnings"] == []
    assert "warning:" not in flat(trained[1]["replace"])


def test_status_still_lists_a_workspace_with_trackers_off(workspace):
    set_yaml(workspace, {"runtime": {"report_to": "none"}})
    (workspace / "tracking").write_text("a file is fine while no tracker writes")
    assert cli("status", "-w", workspace).exit_code == 0
