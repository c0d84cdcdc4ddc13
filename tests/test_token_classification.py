"""Token classification (NER in BIO tags) on the user's own files: CoNLL and list-valued
JSONL / Parquet / save_to_disk, subword alignment, seqeval entity F1, token-level KD,
the all-O trivial row, export to stock ``AutoModelForTokenClassification`` and ONNX, and
bad tag data caught before any work."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from badinputs import expect, fails
from conftest import FAST, cli, flat, manifest, set_yaml, versions, write_dataset

from theseus_cli.data.metrics import entity_metric_values
from theseus_cli.plugin import registry
from theseus_cli.workspace.config import load_config

PEOPLE = [["king"], ["queen"], ["teacher"], ["young", "doctor"], ["farmer"]]
PLACES = [["city"], ["old", "town"], ["village"], ["big", "river"]]
FILLER = ["the", "a", "cat", "sat", "on", "saw", "house", "in", "and", "went", "to", "with"]
TAGS = ("O", "B-person", "I-person", "B-place", "I-place")


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    words, tags = [], []
    for _ in range(rng.randint(1, 3)):
        words += rng.sample(FILLER, rng.randint(1, 3))
        tags += ["O"] * (len(words) - len(tags))
        kind, names = ("person", PEOPLE) if rng.random() < 0.5 else ("place", PLACES)
        entity = rng.choice(names)
        words += entity
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
    return words, tags


def sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(n)]


def write_conll(path: Path, rows, sep: str = "\t", blank: str = "", docstart: bool = False) -> Path:
    lines = ["-DOCSTART- -X- O O", ""] if docstart else []
    for words, tags in rows:
        lines += [f"{w}{sep}{t}" for w, t in zip(words, tags, strict=False)] + [blank]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def conll(tmp_path) -> dict[str, Path]:
    d = tmp_path / "data"
    d.mkdir()
    return {"train": write_conll(d / "train.conll", sentences(48, 0), blank="\t", docstart=True),
            "validation": write_conll(d / "dev.conll", sentences(16, 1), sep=" "),
            "test": write_conll(d / "test.conll", sentences(12, 2))}


def _init(ws: Path, model: Path, files: dict[str, Path], *extra: str) -> Path:
    cli("init", ws, "--model", model, "--task", "ner",
        *(x for split, path in files.items() for x in (f"--{split}", path)), *extra)
    set_yaml(ws, FAST)
    return ws


def test_pipeline_on_conll_files(tmp_path, tiny_model_dir, conll):
    """init -> replace (teacher first) -> finetune-successor -> evaluate -> export, with
    token-level KD (distill_weight 0.5, as the default recipe) on a tiny BERT."""
    from transformers import AutoModelForTokenClassification

    ws = _init(tmp_path / "ws", tiny_model_dir, conll)
    task = load_config(ws).task_definition("ner")
    assert task.kind == "token-classification"
    assert task.label_names == TAGS  # O first, then by type, B- before I-
    assert task.metrics[0] == "entity_f1" and task.score_metrics == ("entity_f1",)
    assert len(task.load("train")) == 48 and len(task.load("dev")) == 16
    for command in (["replace", "--distill-weight", "0.5"],
                    ["finetune-successor", "--distill-weight", "0.5"], ["evaluate"],
                    ["export", "--format", "hf,onnx", "--no-card-speed"]):
        cli(*command, "-w", ws)
    teacher = manifest(ws, "finetune-teacher", task="ner")
    assert {"entity_f1", "entity_precision", "entity_recall", "token_accuracy"} <= set(
        teacher["metrics"])
    assert teacher["info"]["task_kind"] == "token-classification"
    assert teacher["info"]["labels"] == list(TAGS)
    replace = manifest(ws, "replace", task="ner")
    assert replace["info"]["distillation"]["teacher_logits"] == "computed"
    evaluation = manifest(ws, "evaluate", task="ner")["metrics"]
    assert evaluation["majority_entity_f1"] == 0.0  # the all-O row finds no entity
    assert evaluation["majority_test_entity_f1"] == 0.0
    assert 0.5 < evaluation["majority_token_accuracy"] < 1.0  # O is the most frequent tag
    assert "successor_test_entity_f1" in evaluation
    out = ws / "artifacts/ner/export/v1"
    config = json.loads((out / "model/config.json").read_text())
    assert list(config["id2label"].values()) == list(TAGS)
    assert config["architectures"] == ["BertForTokenClassification"]
    model = AutoModelForTokenClassification.from_pretrained(out / "model")
    assert model.config.num_hidden_layers == 2
    exported = manifest(ws, "export", task="ner")["metrics"]
    assert exported["onnx_logits_max_abs_diff"] < 1e-4
    assert exported["onnx_score"] == pytest.approx(exported["pytorch_score"], abs=1e-6)
    card = (out / "README.md").read_text()
    assert "AutoModelForTokenClassification" in card and "token-classification" in card


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "saved"])
def test_list_columns_in_every_format_give_the_conll_task(tmp_path, tiny_model_dir, conll, fmt):
    import datasets

    rows = sentences(48, 0)
    ds = datasets.Dataset.from_dict({"words": [w for w, _ in rows],
                                     "ner_tags": [t for _, t in rows]})
    train = write_dataset(ds, tmp_path / f"train.{fmt}", fmt)
    ws = tmp_path / "ws"
    cli("init", ws, "--model", tiny_model_dir, "--task", "ner", "--train", train,
        "--tokens-column", "words", "--label-column", "ner_tags")
    task = load_config(ws).task_definition("ner")
    reference = load_config(_init(tmp_path / "ref", tiny_model_dir, {"train": conll["train"]})
                            ).task_definition("ner")
    assert task.kind == "token-classification" and task.label_names == TAGS
    # no validation file: a seeded held-out part of train, not stratified (tag lists)
    assert task.holdout() == reference.holdout()
    assert task.load("dev")["label"] == reference.load("dev")["label"]


def test_first_subword_of_each_word_carries_its_tag():
    """The embedded (real WordPiece) tokenizer splits rare words; only their first
    subword is tagged, the others and [CLS]/[SEP] are -100; truncation drops tags."""
    from transformers import AutoTokenizer

    from theseus_cli.model.loading import resolve_model_source

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source("embedded"))
    kind = registry.task_kind("token-classification")
    words = ["Kalamazoo", "is", "unbelievably", "cold"]
    enc = kind.encode(tokenizer, [[words]], [[3, 0, 0, 0]], max_length=64)
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    labels = enc["labels"][0]
    assert len(pieces) > len(words) + 2  # some words were split
    tagged = [p for p, t in zip(pieces, labels, strict=False) if t != -100]
    assert len(tagged) == len(words) and not any(p.startswith("##") for p in tagged)
    assert [t for t in labels if t != -100] == [3, 0, 0, 0]
    assert labels[0] == labels[-1] == -100  # [CLS], [SEP]
    short = kind.encode(tokenizer, [[words]], [[3, 0, 0, 0]], max_length=4)
    assert len(short["input_ids"][0]) == 4 and sum(t != -100 for t in short["labels"][0]) < 4


def test_entity_metrics_are_seqeval_s():
    names = TAGS
    ids = {n: i for i, n in enumerate(names)}
    ref = [["B-person", "O", "B-place", "I-place"], ["O", "B-person", "O", "O"]]
    pred = [["B-person", "O", "B-place", "O"], ["O", "B-person", "O", "B-place"]]
    r = np.array([[ids[t] for t in row] + [-100] for row in ref])  # a padded position
    p = np.array([[ids[t] for t in row] + [ids["B-place"]] for row in pred])
    m = entity_metric_values(("entity_f1", "entity_precision", "entity_recall",
                              "token_accuracy"), p, r, names)
    # entities: ref {person@0, place@2-3, person@1}; pred {person@0, place@2, person@1, place@3}
    assert m["entity_precision"] == pytest.approx(2 / 4)
    assert m["entity_recall"] == pytest.approx(2 / 3)
    assert m["entity_f1"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    assert m["token_accuracy"] == pytest.approx(6 / 8)
    all_o = np.zeros_like(r)
    assert entity_metric_values(("entity_f1",), all_o, r, names)["entity_f1"] == 0.0


def test_invalid_bio_is_repaired_with_a_warning(tmp_path, tiny_model_dir, conll):
    rows = sentences(48, 0)
    rows[0] = (["the", "king", "sat"], ["O", "I-person", "O"])  # an entity opened by I-
    rows[1] = (["old", "town"], ["I-place", "I-place"])
    write_conll(conll["train"], rows)
    ws = _init(tmp_path / "ws", tiny_model_dir, conll)
    task = load_config(ws).task_definition("ner")
    train = task.load("train")
    names = task.label_names
    assert [names[i] for i in train[1]["label"]] == ["B-place", "I-place"]
    text = flat(cli("finetune-teacher", "-w", ws, "--max-steps", "1").output)
    assert "warning:" in text and "2 tag(s) of the train split start an entity with I-" in text


def test_bad_tag_data_is_caught_before_any_work(tmp_path, tiny_model_dir, conll):
    ws = _init(tmp_path / "ws", tiny_model_dir, conll)
    good = conll["validation"].read_text()
    conll["validation"].write_text("the O\nking\n\n" + good)
    fails(ws, ["replace"], 2, "dev.conll: line 2: token 'king' has no tag")
    conll["validation"].write_text(good + "the O\nking B-monarch\n")
    fails(ws, ["replace"], 2, "the dev split has labels that train never has: 'B-monarch'")
    conll["validation"].write_text(good)
    lines = tmp_path / "bad.jsonl"
    lines.write_text(json.dumps({"tokens": ["a", "cat"], "tags": ["O"]}) + "\n")
    ws2 = tmp_path / "ws2"
    cli("init", ws2, "--model", tiny_model_dir, "--task", "ner", "--train", lines,
        "--label-column", "tags")
    set_yaml(ws2, FAST)
    fails(ws2, ["replace"], 2, "bad.jsonl: line 1: 2 words but 1 tags in 'tags'")
    assert versions(ws, "finetune-teacher", task="ner") == []


def test_a_sequence_classifier_is_no_tagging_teacher(tmp_path, tiny_model_dir, conll):
    ws = tmp_path / "ws"
    cli("init", ws, "--teacher", tiny_model_dir, "--task", "ner",
        *(x for split, path in conll.items() for x in (f"--{split}", path)))
    set_yaml(ws, FAST)
    # the tiny model was saved as BertForSequenceClassification: its head does not fit
    expect(cli("finetune-teacher", "-w", ws, ok=False), 2, "is a BertForSequenceClassification",
           "token-classification (AutoModelForTokenClassification)")


def test_a_hub_dataset_with_class_label_tags(tmp_path, tiny_model_dir, monkeypatch):
    """``hub:ID[:CONFIG][@SPLIT]`` reads through ``datasets.load_dataset`` (stubbed here:
    no Hub in tests); ClassLabel tag ids become their names; a dataset that cannot be
    loaded is a clear error before any work."""
    import datasets

    real = datasets.load_dataset
    feature = datasets.Sequence(datasets.ClassLabel(names=list(TAGS)))
    calls = []

    def load_dataset(name, *args, **kwargs):
        if name != "tner/wnut2017":
            return real(name, *args, **kwargs)
        calls.append((args, kwargs.get("split")))
        rows = sentences(40 if kwargs["split"] == "train" else 10, len(calls))
        return datasets.Dataset.from_dict(
            {"tokens": [w for w, _ in rows], "tags": [[TAGS.index(t) for t in tags]
                                                      for _, tags in rows]},
            features=datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                        "tags": feature}))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    ws = tmp_path / "ws"
    cli("init", ws, "--model", tiny_model_dir, "--task", "ner", "--train", "hub:tner/wnut2017",
        "--validation", "hub:tner/wnut2017@validation", "--label-column", "tags")
    assert "train: hub:tner/wnut2017  #" in (ws / "theseus.yaml").read_text()
    task = load_config(ws).task_definition("ner")
    assert task.kind == "token-classification" and set(task.label_names) <= set(TAGS)
    assert len(task.load("dev")) == 10 and calls[-1] == ((None,), "validation")
    set_yaml(ws, FAST)
    cli("finetune-teacher", "-w", ws, "--max-steps", "1")
    set_yaml(ws, {"tasks": {"ner": {"train": "hub:nobody/nothing"}}})
    fails(ws, ["replace"], 2, "hub:nobody/nothing@train: cannot load the Hub dataset")


def test_hub_class_labels_of_minus_one_mean_no_label():
    """The Hub writes -1 for "no label" (GLUE's test splits): a split of -1 only is an
    unlabelled split (the column dropped), a mix is an error that counts the rows."""
    import datasets

    from theseus_cli.data.hub_files import class_labels_as_names
    from theseus_cli.errors import DataError

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 0, 1]}, features)
    assert class_labels_as_names(ds, "label")["label"] == ["pos", "neg", "pos"]
    unlabelled = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [-1, -1]}, features)
    assert class_labels_as_names(unlabelled, "label").column_names == ["text"]
    mixed = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, -1, -1]}, features)
    with pytest.raises(DataError, match=r"hub:x \(test\): 2 of 3 rows have no label .*row 1"):
        class_labels_as_names(mixed, "label", "hub:x (test)")
