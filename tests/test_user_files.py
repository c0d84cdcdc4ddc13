"""The readers of the user's own data files (theseus_cli.data.user_files): every format,
the held-out validation split, and bad files named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from theseus_cli.data import labels as label_checks
from theseus_cli.data import user_files as uf
from theseus_cli.errors import DataError

ROWS = [("how do I top up my card?", "top_up"), ("my card has not arrived", "card_arrival"),
        ("I want to top up by transfer", "top_up"), ("card still missing", "card_arrival"),
        ("where is my new card", "card_arrival"), ("top up failed", "top_up")]


def _csv(path: Path, rows=ROWS, sep=",", header=("text", "category")) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "saved"])
def test_every_tabular_format_reads_the_same_rows(tmp_path, fmt):
    import datasets

    ds = datasets.Dataset.from_dict({"text": [r[0] for r in ROWS],
                                     "category": [r[1] for r in ROWS]})
    path = tmp_path / f"train.{fmt}"
    if fmt == "csv":
        _csv(path)
    elif fmt == "tsv":
        _csv(path, sep="\t")
    elif fmt == "json":
        path.write_text(json.dumps([{"text": t, "category": c} for t, c in ROWS]))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "category": c}) + "\n" for t, c in ROWS))
    elif fmt == "parquet":
        ds.to_parquet(str(path))
    else:
        path = tmp_path / "saved"
        datasets.DatasetDict({"train": ds}).save_to_disk(str(path))
    assert uf.detect_format(path) == fmt
    read = uf.read_saved(path, "train") if fmt == "saved" else uf.read_table(path, fmt)
    assert read["text"] == ds["text"] and read["category"] == ds["category"]


def test_conll_with_tab_only_separators_and_docstart(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text("-DOCSTART- O\n\n@paul\tB-person\nsays\tO\n\t\nhi\tO\nLondon\tB-location\n"
                    " \nNew B-location\nYork I-location\n", encoding="utf-8")
    ds = uf.read_conll(path)
    assert ds["tokens"] == [["@paul", "says"], ["hi", "London"], ["New", "York"]]
    assert ds["tags"] == [["B-person", "O"], ["O", "B-location"], ["B-location", "I-location"]]
    assert ds["line"] == [3, 6, 9]


def test_real_wnut17_train_reads_every_sentence():
    from theseus_cli.data.sources import checkout_glue_dir

    path = checkout_glue_dir(Path(__file__).resolve().parents[1]).parent / "data/wnut17/train.conll"
    if not path.is_file():
        pytest.skip("../shared/data is absent")
    ds = uf.read_conll(path)
    assert len(ds) == 3394 and sum(map(len, ds["tokens"])) == 62730


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD = [
    ("missing file", lambda p: p / "nope.csv", "nope.csv: no such file"),
    ("empty file", lambda p: _file(p / "e.csv", b""), "the file is empty"),
    ("header only", lambda p: _file(p / "h.csv", b"text,category\n"),
     "has no rows (only a header line)"),
    ("non-UTF-8", lambda p: _file(p / "b.csv", b"text,category\nab\xffc,x\n"),
     "line 2, byte offset 16: byte 0xff is not valid UTF-8"),
]


@pytest.mark.parametrize("name,make,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_files_are_named(tmp_path, name, make, needle):
    with pytest.raises(DataError) as e:
        uf.read_table(make(tmp_path), "csv")
    assert needle in str(e.value)


def test_unknown_column_lists_the_columns(tmp_path):
    ds = uf.read_table(_csv(tmp_path / "t.csv"), "csv")
    with pytest.raises(DataError) as e:
        uf.check_columns(ds, tmp_path / "t.csv", ["text", "label"])
    assert "no column 'label'; the columns are text, category" in str(e.value)


def test_empty_text_cell_names_its_line(tmp_path):
    path = _csv(tmp_path / "t.csv", rows=[*ROWS[:2], ("", "top_up"), *ROWS[3:]])
    ds = uf.read_table(path, "csv")
    with pytest.raises(DataError) as e:
        uf.check_texts(ds, path, "csv", ["text"])
    assert "line 4: the text column 'text' is empty (1 such row(s))" in str(e.value)


def test_conll_token_without_tag(tmp_path):
    path = tmp_path / "t.conll"
    path.write_text("a\tO\nb\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        uf.read_conll(path)
    assert "line 2: token 'b' has no tag" in str(e.value)


def test_mixed_label_types_and_missing_labels(tmp_path):
    with pytest.raises(DataError) as e:
        label_checks.label_type(["a", 3, "b"], tmp_path / "t.jsonl", "jsonl", "label")
    assert "mixes types: str (line 1), int (line 2)" in str(e.value)
    with pytest.raises(DataError) as e:
        label_checks.label_type(["a", None], tmp_path / "t.csv", "csv", "label")
    assert "line 3: the label column 'label' is empty" in str(e.value)


def test_labels_unseen_in_train_are_named_with_counts(tmp_path):
    from theseus_cli.plugin import registry

    kind = registry.task_kind("sequence-classification")
    names = kind.label_names(["top_up", "card_arrival", "top_up"], None)
    assert names == ["card_arrival", "top_up"]
    assert kind.label_names([10, 2, 1], None) == ["1", "2", "10"]
    assert kind.label_names([10, 2, 1], ["b", "a"]) == ["b", "a"]
    with pytest.raises(DataError) as e:
        label_checks.check_known_labels(["top_up", "refund", "refund"], names, tmp_path / "test.csv", "test")
    assert "labels that train never has: 'refund' (2 rows)" in str(e.value)


def test_holdout_is_stratified_seeded_and_deterministic():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["d"]
    train, held = uf.holdout_rows(labels, 0.1, seed=42)
    assert (train, held) == uf.holdout_rows(labels, 0.1, seed=42)
    assert held != uf.holdout_rows(labels, 0.1, seed=43)[1]
    assert sorted(train + held) == list(range(len(labels))) and held == sorted(held)
    per_class = {k: sum(labels[i] == k for i in held) for k in "abcd"}
    assert per_class == {"a": 5, "b": 3, "c": 2, "d": 0}  # a single row stays in train
    with pytest.raises(DataError):
        uf.holdout_rows(labels, 1.5, seed=0)
