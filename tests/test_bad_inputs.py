"""The catalogue of bad inputs and faults theseus is tested against, at the CLI level.

Every case runs ``theseus`` on a tiny random model and asserts the exit status,
that the message names the bad value or file and what to do, that no traceback
is shown, and that the published versions are unchanged (byte for byte where an
artifact was corrupted). Exit statuses: 2 bad configuration or input data,
3 training diverged, 4 a published artifact does not match its manifest,
1 other failures (e.g. a plugin broke its contract), 75 the stage is already
running, 130 / 143 interrupted by SIGINT / SIGTERM.

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
  M7 corrupted model.safetensors    M8 truncated model.safetensors  M9 DistilBERT to replace
  M10 GPT-2 to replace              M11 default max_seq_length 128 > 64 positions
  M12 replace in a fresh workspace over DistilBERT: rejected before the teacher trains
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
Signals:
  S1 SIGTERM mid-training: exit 143, how to resume, checkpoint kept, rerun resumes
  S2 SIGINT mid-training: exit 130, the same
  S3 SIGTERM in the middle of a publish: nothing published, no staging left
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import procs
from conftest import FAST, cli, copy_workspace, flat, make_workspace, set_yaml, versions, write_glue

# ----------------------------------------------------------------- helpers


def published(ws: Path) -> dict[str, str]:
    """sha256 of every file of every published version (``artifacts/*/*/v*/**``)."""
    out = {}
    for f in sorted((ws / "artifacts").glob("*/*/v*/**/*")):
        if f.is_file():
            out[f.relative_to(ws).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def expect(result, code: int, *needles: str) -> str:
    """Assert the exit status, the phrases in the output and no traceback."""
    text = flat(result.output)
    assert result.exit_code == code, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Traceback" not in text
    return text


def fails(ws: Path, args: list, code: int, *needles: str) -> str:
    """Run ``theseus ARGS -w WS``: it fails with ``code`` and changes no published file."""
    before = published(ws)
    text = expect(cli(*args, "-w", ws, ok=False), code, *needles)
    assert published(ws) == before
    return text


@pytest.fixture(scope="session")
def models(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Tiny models of other families and broken model directories."""
    import torch
    from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification,
                              DistilBertConfig, DistilBertForSequenceClassification, GPT2Config,
                              GPT2ForSequenceClassification)

    root = tmp_path_factory.mktemp("models")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    vocab = tok.vocab_size
    torch.manual_seed(0)
    built = {
        "distilbert": DistilBertForSequenceClassification(DistilBertConfig(
            vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=37)),
        "gpt2": GPT2ForSequenceClassification(GPT2Config(
            vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, pad_token_id=0)),
        "short": BertForSequenceClassification(BertConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=64)),
    }
    nan = BertForSequenceClassification.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        nan.classifier.weight[0, 0] = float("nan")
    built["nan"] = nan
    out = {}
    for name, model in built.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        out[name] = root / name
    for name in ("corrupted", "truncated"):
        shutil.copytree(tiny_model_dir, root / name)
        weights = root / name / "model.safetensors"
        data = weights.read_bytes()
        weights.write_bytes(b"\xde\xad\xbe\xef" * 64 if name == "corrupted" else data[:len(data) // 2])
        out[name] = root / name
    return out


@pytest.fixture
def corrupt_ws(trained, tmp_path) -> Path:
    """A private copy of the workspace that ran the whole MRPC pipeline."""
    return copy_workspace(trained[0], tmp_path / "ws")


def art(ws: Path, stage: str, rel: str = "", version: str = "v1") -> Path:
    return ws / "artifacts" / "MRPC" / stage / version / rel


def flip(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


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
     ["unknown successor builder 'last-n'; available: every-other, first-n"]),
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
    ("M9", lambda m, ws: str(m["distilbert"]),
     ["module replacing does not support model type 'distilbert'", "supported: bert"]),
    ("M10", lambda m, ws: str(m["gpt2"]), ["does not support model type 'gpt2'"]),
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
    set_yaml(workspace, {"model": str(models["distilbert"])})
    assert cli("finetune-teacher", "-w", workspace).exit_code == 0  # a teacher alone is fine
    fails(workspace, ["replace"], 2, "does not support model type 'distilbert'")
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
    fails(workspace, ["status"], 2, "unknown key 'modle'; accepted: data, distill, evaluate")


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
    from theseus_cli.divergence import DivergenceGuard
    from theseus_cli.errors import TrainingDivergedError

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
    from theseus_cli.integrity import check_finite_weights

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
    from theseus_cli.jsonio import dumps
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
    text = expect(cli("verify", "-w", corrupt_ws), 0, "all 6 versions match their manifests")
    assert "MRPC/export/v1" in text
    flip(art(corrupt_ws, "finetune-teacher", "model/model.safetensors"))
    before = published(corrupt_ws)
    expect(cli("verify", "-w", corrupt_ws, ok=False), 4,
           "1 of 6 versions do not match their manifests: MRPC/finetune-teacher/v1",
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
from theseus_cli.contracts import Scheduler

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
           "'cosine' is not installed (available: anti-curriculum, constant, linear); its arguments are ignored")
    set_yaml(workspace, {"replace": {"scheduler": "cosine"}})
    expect(cli("status", "-w", workspace), 0, "replace.scheduler: scheduler 'cosine' is not installed")
    fails(workspace, ["replace"], 2, "unknown scheduler 'cosine'; available: anti-curriculum, constant, linear")


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
    assert proc.wait(timeout=procs.TIMEOUT) == code
    out = flat((tmp_path / "run.log").read_text())
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
