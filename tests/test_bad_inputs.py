"""The catalogue of bad inputs and faults theseus is tested against, at the CLI level.

Every case runs ``theseus`` on a tiny random model and asserts the exit status,
that the message names the bad value or file and what to do, that no traceback
is shown, and that the published versions are unchanged (byte for byte where an
artifact was corrupted). Exit statuses: 2 bad configuration or input data,
3 training diverged, 4 a published artifact does not match its manifest,
1 other failures (e.g. a plugin broke its contract), 75 the stage is already
running, 130 / 143 interrupted by SIGINT / SIGTERM.

The cases before any work (C, M, D, W) are in this module; the faults during and
after a run (V, I, P, F, S) are in tests/test_faults.py; the surfaces added since (E,
M13-M15, I15-I17, N) are in tests/test_bad_inputs_surfaces.py, and the decoder families
on padded batches of real text in tests/test_family_pipeline.py.

Configuration, checked before any work (``CONFIG_CASES``, exit 2):
  C1 --seed above 2^32-1            C2 runtime.seed above 2^32-1 in theseus.yaml
  C3 --successor-layers 3 (4 layers) C4 replace.successor_layers: 3 in theseus.yaml
  C5 --successor-layers 5 (> L)     C6 evaluate in a fresh workspace, bad successor_layers
  C7 data.max_seq_length 256 > 128 positions   C8 --scheduler cosine (unknown)
  C9 --scheduler-arg b=2            C10 --scheduler-arg steps_to_one=0
  C11 --successor last-n (unknown)  C12 --learning-rate -1
  C13 --precision fp8               C14 --max-train-samples 0
Model sources (``MODEL_CASES`` and functions, exit 2):
  M1 ./missing model directory      M2 ../missing model directory   M3 absolute missing path
  M4 model path is a file           M5 a malformed hub id (a/b/c)   M6 hub id, hub unreachable
  M7 corrupted model.safetensors    M8 truncated model.safetensors  M9 RoFormer (no family) to replace
  M10 Qwen2, mixed layer types      M11 default max_seq_length 128 > 64 positions
  M12 replace in a fresh workspace over RoFormer: rejected before the teacher trains
Data (``DATA_CASES``, exit 2):
  D1 non-UTF-8 byte in train.tsv    D2 non-UTF-8 byte in dev.tsv    D3 0-byte dev.tsv
  D4 header-only dev.tsv            D5 header-only train.tsv        D6 STS-B score 5.5
  D7 STS-B score -1                 D8 missing GLUE directory        D9 GLUE dir without the task
  D10 GLUE dir is a file            D11 wrong column count (line named)
Workspace (functions, exit 2):
  W1 empty theseus.yaml             W2 theseus.yaml with comments only
  W3 theseus init onto a file       W4 theseus init below a file
  W5 stage directory is a file      W6 .lock is a directory         W7 read-only stage dir (non-root)
  W8 unknown top-level key
Divergence (exit 3, nothing published):
  V1 finetune-teacher --learning-rate 1e6   V2 replace --learning-rate 1e6
  V3 finetune-successor --learning-rate 1e6 V4 a predecessor with NaN weights
  V5 STS-B whose every dev evaluation is NaN (constant dev scores)
  V6 divergence after a checkpoint: it is kept, named, and resuming diverges again
  V7 fp16 loss scaling: 10 non-finite steps tolerated, the 11th diverges (guard)
  V8 non-finite weights are never published (staged-file check)
  V9 every JSON written is strict (no NaN / Infinity tokens)
  V10 export compares logits NaN-aware (NaN logits never pass the parity check)
Integrity (exit 4, nothing read, versions byte-identical):
  I1 flipped bytes in replace/v1 model.safetensors, finetune-successor --force
  I2 edited teacher model/config.json, evaluate --force
  I3 a file deleted from a published version     I4 replace's manifest edited
  I5 an ancestor's manifest edited (evaluate)    I6 truncated safetensors in an artifact
  I7 manifest.json not JSON (status still works) I8 pinned --from version corrupted
  I9 export over a corrupted ancestor            I10 bytes flipped, mtime restored: still caught
  I11 theseus verify: intact workspace, exit 0   I12 theseus verify: corrupted, exit 4
  I13 theseus status marks the corrupted version I14 rerunning the producing stage replaces it
Plugins:
  P1 a plugin calling sys.exit() on import: --help and plugins work, it is reported
  P2 a plugin raising on import             P3 scheduler rate 1.5 (exit 1, plugin and step named)
  P4 scheduler rate NaN                     P5 scheduler rate() raises
  P6 theseus.yaml names an uninstalled scheduler's arguments: status works, a warning
  P7 theseus.yaml selects an uninstalled scheduler: status works, replace exit 2
Published files:
  F1 every published file follows the umask (model.safetensors was 0600)
Options checked before any stage runs (tests/test_bad_inputs_surfaces.py, exit 2):
  E1 export --onnx-tolerance nan    E2 export --output naming an existing directory
  E3 export --output below a file   E4 benchmark --seq-lengths 512 > 128 positions
  E5 --seeds 100000 (or 101 listed) on a stage command: the sweep's cap of 100
  E6 --report-to tensorboard with workspace/tracking a file
  E7 export --format hf,onnx, onnxruntime cannot be imported
  E8 benchmark over an onnx export, onnxruntime cannot be imported
Predecessor weights (tests/test_bad_inputs_surfaces.py):
  M13 a tensor of the encoder missing from model.safetensors (exit 2, names it)
  M14 a head of another task (3 classes) is the known exception: it loads, a new head
  M15 a Git LFS pointer in place of the weights (exit 2, `git lfs pull`)
What verify sees (tests/test_bad_inputs_surfaces.py, exit 4):
  I15 a version directory whose manifest.json was deleted   I16 a file the manifest
  does not list   I17 a symbolic link leading out of the workspace
Settings that do nothing (tests/test_bad_inputs_surfaces.py, exit 0, a warning, recorded
in the manifest's info.warnings):
  N1 steps_to_one=1000 with 6 optimizer steps   N2 low-rank rank=64 at hidden 32
  N3 head_fraction=0.1 of 4 heads (rounded up to 1)
Your own data (tests/test_user_files.py, test_user_tasks.py, test_adopt_teacher.py,
test_token_classification.py; exit 2 before any work, file and line or row named):
  U1 a missing train/validation/test file     U2 an unknown column (the columns listed)
  U3 an empty text cell (its line)            U4 a missing label, labels of mixed types
  U5 a dev/test label train never has, counted  U6 non-UTF-8 bytes (line and offset)
  U7 an empty file / header only              U8 a CoNLL token without a tag (its line)
  U9 a word list and a tag list of different lengths (JSON Lines row)
  U10 a dev tag train never has (B-monarch)   U11 a Hub dataset that cannot be loaded
  U12 --teacher of other classes (both sets printed)
  U13 --teacher with a sequence-classification head for a tagging task
  U14 invalid BIO (an entity opened by I-): exit 0, repaired as seqeval reads it, a warning
      that counts the tags
  U15 init: a user task named as a GLUE task, --test without --train, --train without --task
Signals:
  S1 SIGTERM mid-training: exit 143, how to resume, checkpoint kept, rerun resumes
  S2 SIGINT mid-training: exit 130, the same
  S3 SIGTERM in the middle of a publish: nothing published, no staging left
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from badinputs import expect, fails
from conftest import cli, make_workspace, set_yaml, versions, write_glue

# ------------------------------------------------- C: configuration (exit 2)
CONFIG_CASES = [
    ("C1", {}, ["finetune-teacher", "--seed", "4294967296"],
     ["--seed: 4294967296 is above the maximum 4294967295"]),
    ("C2", {"runtime": {"seed": 2**32}}, ["status"],
     ["runtime.seed: 4294967296 is above the maximum 4294967295"]),
    ("C3", {}, ["replace", "--successor-layers", "3"],
     ["--successor-layers 3: 3 successor layers cannot replace the 4 layers", "accepted: 1, 2, 4"]),
    ("C4", {"replace": {"successor_layers": 3}}, ["replace"],
     ["replace.successor_layers: 3 (theseus.yaml or default)", "accepted: 1, 2, 4"]),
    ("C5", {}, ["replace", "--successor-layers", "5"], ["cannot replace the 4 layers"]),
    ("C6", {"replace": {"successor_layers": 3}}, ["evaluate"],
     ["replace (run first, for evaluate): replace.successor_layers: 3"]),
    ("C7", {"data": {"max_seq_length": 256}}, ["replace"],
     ["data.max_seq_length: 256 exceeds the 128 positions", "at most 128"]),
    ("C8", {}, ["replace", "--scheduler", "cosine"],
     ["unknown scheduler 'cosine'; available: anti-curriculum, constant, linear"]),
    ("C9", {}, ["replace", "--scheduler-arg", "b=2"], ["2.0 is above the maximum 1.0"]),
    ("C10", {}, ["replace", "--scheduler-arg", "steps_to_one=0"], ["steps_to_one: 0 is below"]),
    ("C11", {}, ["replace", "--successor", "last-n"],
     ["unknown successor builder 'last-n'; available: compose, every-other, first-n"]),
    ("C12", {}, ["finetune-teacher", "--learning-rate", "-1"], ["-1.0 is below the minimum 0.0"]),
    ("C13", {}, ["finetune-teacher", "--precision", "fp8"],
     ["--precision: invalid value 'fp8'; accepted: no, fp16, bf16"]),
    ("C14", {}, ["finetune-teacher", "--max-train-samples", "0"],
     ["--max-train-samples: 0 is below the minimum 1"]),
]


@pytest.mark.parametrize("case,updates,args,needles", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_configuration_is_checked_before_any_work(workspace, case, updates, args, needles):
    set_yaml(workspace, updates)
    t0 = time.monotonic()
    fails(workspace, args, 2, *needles)
    assert versions(workspace, "finetune-teacher") == []  # no teacher trained first
    assert time.monotonic() - t0 < 60


# ---------------------------------------------------- M: model sources (exit 2)
MODEL_CASES = [
    ("M1", lambda m, ws: "./nope", ["model directory", "nope' does not exist"]),
    ("M2", lambda m, ws: "../nope", ["model directory", "does not exist", "not "]),
    ("M3", lambda m, ws: "/does/not/exist", ["model directory '/does/not/exist' does not exist"]),
    ("M4", lambda m, ws: str(m["corrupted"] / "config.json"), ["is a file, not a model directory"]),
    ("M5", lambda m, ws: "a/b/c", ["'a/b/c' is neither an existing directory nor a valid hub id"]),
    ("M7", lambda m, ws: str(m["corrupted"]), ["could not load model", "corrupted or truncated"]),
    ("M8", lambda m, ws: str(m["truncated"]), ["could not load model", "corrupted or truncated"]),
    ("M9", lambda m, ws: str(m["roformer"]),
     ["module replacing does not support model type 'roformer'", "supported families (model types)",
      "bert: bert", "gpt2: gpt2", "'theseus.families' entry-point group"]),
    ("M10", lambda m, ws: str(m["qwen2-mixed"]),
     ["llama: the predecessor mixes layer types ['full_attention', 'sliding_attention']",
      "use_sliding_window: false"]),
    ("M11", lambda m, ws: str(m["short"]),
     ["MRPC's default maximum sequence length 128", "exceeds the 64 positions",
      "set data.max_seq_length to at most 64"]),
]


@pytest.mark.parametrize("case,model,needles", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_model_source_errors(workspace, models, case, model, needles):
    set_yaml(workspace, {"model": model(models, workspace)})
    fails(workspace, ["replace"], 2, *needles)
    assert versions(workspace, "finetune-teacher") == []


def test_M6_hub_id_with_the_hub_unreachable_fails_in_seconds(workspace, monkeypatch):
    set_yaml(workspace, {"model": "bert-base-uncased"})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed loopback port
    t0 = time.monotonic()
    fails(workspace, ["finetune-teacher"], 2, "cannot load model 'bert-base-uncased'",
          "hub is unreachable", "not in the local Hugging Face cache")
    assert time.monotonic() - t0 < 15


def test_M12_unsupported_family_is_rejected_before_the_teacher_trains(workspace, models):
    set_yaml(workspace, {"model": str(models["roformer"])})
    assert cli("finetune-teacher", "-w", workspace).exit_code == 0  # a teacher alone is fine
    fails(workspace, ["replace"], 2, "does not support model type 'roformer'")
    assert versions(workspace, "replace") == []


# ------------------------------------------------------------- D: data (exit 2)
def _bad_byte(glue: Path, split: str) -> None:
    path = glue / "MRPC" / f"{split}.tsv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3][:10] + b"\xff" + lines[3][10:]
    path.write_bytes(b"\n".join(lines))


DATA_CASES = [
    ("D1", lambda g: _bad_byte(g, "train"), ["train.tsv: line 4, byte offset", "0xff is not valid UTF-8"]),
    ("D2", lambda g: _bad_byte(g, "dev"), ["dev.tsv: line 4, byte offset", "re-save the file as UTF-8"]),
    ("D3", lambda g: (g / "MRPC" / "dev.tsv").write_bytes(b""),
     ["dev.tsv: the dev split has no rows (the file is empty, 0 bytes)"]),
    ("D4", lambda g: (g / "MRPC" / "dev.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"),
     ["the MRPC dev split has no rows (only a header line)"]),
    ("D5", lambda g: (g / "MRPC" / "train.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"),
     ["the MRPC train split has no rows"]),
    ("D8", lambda g: shutil.rmtree(g), ["GLUE directory", "does not exist", "--glue-dir"]),
    ("D9", lambda g: shutil.rmtree(g / "MRPC"), ["no MRPC data: folder", "does not exist"]),
    ("D10", lambda g: (shutil.rmtree(g), g.write_text("x")), ["GLUE directory", "is a file"]),
    ("D11", lambda g: (g / "MRPC" / "dev.tsv").write_text(
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t2\t3\n"),
     ["dev.tsv: line 2: expected 5 tab-separated columns, found 3"]),
]


@pytest.mark.parametrize("case,damage,needles", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_errors(tmp_path, tiny_model_dir, case, damage, needles):
    glue = write_glue(tmp_path / "glue")
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue)
    damage(glue)
    fails(ws, ["finetune-teacher"], 2, *needles)
    assert versions(ws, "finetune-teacher") == []


@pytest.mark.parametrize("case,score", [("D6", "5.500"), ("D7", "-1")])
def test_stsb_scores_outside_0_5(tmp_path, tiny_model_dir, case, score):
    glue = write_glue(tmp_path / "glue")
    path = glue / "STS-B" / "train.tsv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t" + score
    path.write_text("\n".join(lines) + "\n")
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue)
    set_yaml(ws, {"task": "STS-B"})
    fails(ws, ["finetune-teacher"], 2, f"train.tsv: line 3: score '{score}' is outside [0, 5]")


# --------------------------------------------------------- W: workspace (exit 2)
@pytest.mark.parametrize("case,text", [("W1", ""), ("W2", "# nothing but a comment\n")])
def test_empty_theseus_yaml(workspace, case, text):
    (workspace / "theseus.yaml").write_text(text)
    for command in (["status"], ["finetune-teacher"]):
        expect(cli(*command, "-w", workspace, ok=False), 2, "theseus.yaml is empty",
               "theseus init --force")


def test_W3_W4_init_onto_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    expect(cli("init", tmp_path / "f", ok=False), 2, "exists and is a file, not a directory")
    expect(cli("init", tmp_path / "f" / "ws", ok=False), 2, "cannot write the workspace")
    assert (tmp_path / "f").read_text() == "x"


def test_W5_stage_directory_is_a_file(workspace):
    (workspace / "artifacts" / "MRPC").mkdir(parents=True)
    (workspace / "artifacts" / "MRPC" / "finetune-teacher").write_text("x")
    fails(workspace, ["finetune-teacher"], 2, "cannot create the lock file",
          "must be a writable directory")


def test_W6_lock_path_is_a_directory(workspace):
    (workspace / "artifacts" / "MRPC" / "finetune-teacher" / ".lock").mkdir(parents=True)
    fails(workspace, ["finetune-teacher"], 2, ".lock of MRPC/finetune-teacher is a directory",
          "rmdir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_W7_read_only_stage_directory(workspace):
    stage = workspace / "artifacts" / "MRPC" / "finetune-teacher"
    stage.mkdir(parents=True)
    stage.chmod(0o555)
    try:
        fails(workspace, ["finetune-teacher"], 2, "Permission denied", "writable")
    finally:
        stage.chmod(0o755)


def test_W8_unknown_top_level_key(workspace):
    set_yaml(workspace, {"modle": "x"})
    fails(workspace, ["status"], 2, "unknown key 'modle'; accepted: benchmark, data, distill, evaluate")
