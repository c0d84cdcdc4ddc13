"""Bring your own teacher: ``theseus init --teacher`` adopts a model already fine-tuned on
the task; its classes are matched by name (reordered when only the order differs); a model
of other classes is refused before any work."""

from __future__ import annotations

from badinputs import expect, fails
from conftest import FAST, cli, copy_workspace, manifest, set_yaml, versions
from test_user_tasks import CLASSES, _init, data  # noqa: F401 - data is a fixture

from theseus_cli.workspace.config import load_config


def test_a_teacher_exported_by_one_workspace_is_adopted_by_another(trained, tmp_path,
                                                                   glue_dir):
    first = copy_workspace(trained[0], tmp_path / "first")
    cli("export", "-w", first, "--successor", "finetune-teacher", "--format", "hf")
    exported = first / "artifacts/MRPC/export/v2/model"
    assert exported.is_dir()
    ws = tmp_path / "second"
    cli("init", ws, "--teacher", exported, "--glue-dir", glue_dir)
    set_yaml(ws, FAST)
    cli("finetune-teacher", "-w", ws)
    adopted = manifest(ws, "finetune-teacher")
    original = manifest(first, "finetune-teacher")
    assert adopted["metrics"]["score"] == original["metrics"]["score"]
    assert adopted["info"]["optimizer_steps"] == 0
    assert adopted["info"]["adopted"]["sha256"]["model.safetensors"]
    cli("replace", "-w", ws)
    assert versions(ws, "replace") == ["v1"]


def test_classes_in_another_order_are_reordered(tmp_path, tiny_model_dir, data):  # noqa: F811
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=3, ignore_mismatched_sizes=True,
        id2label=dict(enumerate(reversed(CLASSES))))
    model.save_pretrained(tmp_path / "teacher")
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "teacher")
    ws = tmp_path / "ws"
    cli("init", ws, "--teacher", tmp_path / "teacher", "--task", "intents", "--train",
        data["train"], "--test", data["test"], "--text-column", "utterance",
        "--label-column", "intent")
    set_yaml(ws, FAST)
    cli("finetune-teacher", "-w", ws)
    saved = AutoModelForSequenceClassification.from_pretrained(
        ws / "artifacts/intents/finetune-teacher/v1/model").eval()
    assert saved.config.id2label == dict(enumerate(CLASSES))
    ids = torch.tensor([[2, 7, 9, 3]])
    with torch.no_grad():
        before = model.eval()(input_ids=ids).logits[0]
        after = saved(input_ids=ids).logits[0]
    assert torch.allclose(after, before.flip(0), atol=1e-5)  # rows follow the task's order


def test_a_teacher_of_other_classes_is_refused_before_any_work(tmp_path, tiny_model_dir,
                                                              data):  # noqa: F811
    ws = _init(tmp_path / "ws", tiny_model_dir, data)  # a model with the 2 MRPC-sized labels
    set_yaml(ws, {"finetune-teacher": {"adopt": True}})
    fails(ws, ["replace"], 2, "the fine-tuned model's classes do not fit task intents",
          "the model has 2 (LABEL_0, LABEL_1), the task 3 (animal, food, place)")
    assert versions(ws, "finetune-teacher", task="intents") == []
    expect(cli("init", tmp_path / "x", "--teacher", tiny_model_dir, "--model", "bert-base-uncased",
               ok=False), 2, "the teacher is the model; give one of them")
    assert load_config(ws).task_definition("intents").label_names == CLASSES
