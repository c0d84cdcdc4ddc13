"""GLUE task table, TSV readers, tokenisation cache and dynamic padding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from theseus_cli.data import (
    load_split,
    make_dataloader,
    read_tsv_split,
    resolve_glue_dir,
    tokenize_split,
)
from theseus_cli.data.glue import PAPER_TASKS, TASKS, get_task
from theseus_cli.errors import DataError, UnknownNameError


def write(root: Path, rel: str, lines: list[str], bom: bool = False) -> Path:
    """Write a TSV (LF line ends) under root; rows are tab-joined already."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode())
    return path


# ---- the task table ---------------------------------------------------------

def test_table_and_aliases():
    assert list(TASKS) == ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI",
                           "RTE", "WNLI", "AX"]
    assert len(PAPER_TASKS) == 8 and "WNLI" not in PAPER_TASKS
    for alias, name in [("mrpc", "MRPC"), ("sst2", "SST-2"), ("sts-b", "STS-B"),
                        ("stsb", "STS-B"), ("Cola", "CoLA"), ("ax", "AX"), ("SST-2", "SST-2")]:
        assert get_task(alias).name == name
    with pytest.raises(UnknownNameError, match="available: AX, CoLA"):
        get_task("glue")
    stsb, mnli, ax = TASKS["STS-B"], TASKS["MNLI"], TASKS["AX"]
    assert stsb.is_regression and stsb.num_labels == 1
    assert mnli.dev_splits == ("dev_matched", "dev_mismatched")
    assert mnli.hub_split("dev_mismatched") == "validation_mismatched"
    assert ax.splits == ("test",) and ax.tsv_path("/g", "test") == Path("/g/diagnostic/diagnostic.tsv")
    assert TASKS["WNLI"].label_names == ("not_entailment", "entailment")
    with pytest.raises(UnknownNameError):
        TASKS["RTE"].tsv_path("/g", "dev_matched")
    hash(mnli)  # usable as a dict key


# ---- layouts ----------------------------------------------------------------

def test_mrpc_with_bom(tmp_path):
    write(tmp_path, "MRPC/dev.tsv", ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
                                     '1\t11\t12\tA " quoted .\tB .', "0\t13\t14\tC .\tD ."], bom=True)
    cols = read_tsv_split("mrpc", "dev", tmp_path)
    assert cols == {"idx": [0, 1], "sentence1": ['A " quoted .', "C ."],
                    "sentence2": ["B .", "D ."], "label": [1, 0]}


def test_cola_without_header(tmp_path):
    write(tmp_path, "CoLA/train.tsv", ["gj04\t1\t\tGood one .", "gj04\t0\t*\tBad one ."])
    cols = read_tsv_split("CoLA", "train", tmp_path)
    assert cols == {"idx": [0, 1], "sentence": ["Good one .", "Bad one ."], "label": [1, 0]}


def test_stsb_float_scores(tmp_path):
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
    write(tmp_path, "STS-B/dev.tsv", [head + "\tscore", "7\tg\tf\ty\t0\tn\tn\tA.\tB.\t4.750",
                                      "9\tg\tf\ty\t1\tn\tn\tC.\tD.\t0.000"])
    write(tmp_path, "STS-B/test.tsv", [head, "0\tg\tf\ty\t0\tn\tn\tA.\tB."])
    cols = read_tsv_split("STS-B", "dev", tmp_path)
    assert cols["idx"] == [7, 9] and cols["label"] == [4.75, 0.0]
    ds = load_split("stsb", "test", tmp_path)
    assert ds["label"] == [-1.0] and ds["sentence2"] == ["B."]


def test_rte_string_labels_and_test_split(tmp_path):
    write(tmp_path, "RTE/dev.tsv", ["index\tsentence1\tsentence2\tlabel",
                                    "0\tP.\tH.\tnot_entailment", "1\tP2.\tH2.\tentailment"])
    write(tmp_path, "RTE/test.tsv", ["index\tsentence1\tsentence2", "5\tP.\tH.", "6\tQ.\tR."])
    assert read_tsv_split("RTE", "dev", tmp_path)["label"] == [1, 0]
    test = read_tsv_split("RTE", "test", tmp_path)
    assert test["idx"] == [5, 6] and test["label"] == [-1, -1]
    ds = load_split("RTE", "dev", tmp_path, max_samples=1)
    assert len(ds) == 1 and ds.features["label"].names == ["entailment", "not_entailment"]


def test_wnli_label_one_is_entailment(tmp_path):
    write(tmp_path, "WNLI/train.tsv", ["index\tsentence1\tsentence2\tlabel", "0\tP.\tH.\t1"])
    cols = read_tsv_split("WNLI", "train", tmp_path)
    assert TASKS["WNLI"].label_names[cols["label"][0]] == "entailment"


def test_mnli_columns_by_header(tmp_path):
    head = ("index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2"
            "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")
    row = "3\t1\t1\tg\tb\tb\tp\tp\tPrem .\tHyp .\tneutral\tn\tn\tn\tn\tcontradiction"
    write(tmp_path, "MNLI/dev_matched.tsv", [head, row])
    cols = read_tsv_split("MNLI", "dev_matched", tmp_path)
    assert cols == {"idx": [3], "premise": ["Prem ."], "hypothesis": ["Hyp ."], "label": [2]}


# ---- validation errors name file and line -----------------------------------

@pytest.mark.parametrize("rel,lines,line_no,problem", [
    ("RTE/dev.tsv", ["index\tsentence1\tsentence2\tlabel", "0\tP.\tH.\tentailment", "1\tP.\tH."],
     3, "expected 4 tab-separated columns, found 3"),
    ("RTE/dev.tsv", ["index\tsentence1\tsentence2\tlabel", "0\tP.\tH.\tmaybe"],
     2, "unknown label 'maybe'; accepted: entailment, not_entailment"),
    ("CoLA/dev.tsv", ["gj04\t1\t\tOk .", "gj04\t1\t\t  "], 2, "empty text"),
    ("CoLA/dev.tsv", ["gj04\t1\t\tOk .", "gj04\t1\tOk ."], 2, "expected 4"),
    ("SST-2/dev.tsv", ["sentence\tlabel", "fine\t1", "fine\t2"], 3, "unknown label '2'"),
    ("STS-B/dev.tsv", ["index\tsentence1\tsentence2\tscore", "0\tA.\tB.\thigh"], 2,
     "score 'high' is not a number"),
])
def test_row_errors(tmp_path, rel, lines, line_no, problem):
    path = write(tmp_path, rel, lines)
    with pytest.raises(DataError) as err:
        read_tsv_split(rel.split("/")[0], "dev", tmp_path)  # folder = task name
    assert f"{path}: line {line_no}: " in str(err.value) and problem in str(err.value)


def test_missing_dir_and_file(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"QQP.*does not exist.*--glue-dir.*THESEUS_GLUE_DIR"):
        read_tsv_split("QQP", "train", tmp_path)
    write(tmp_path, "QNLI/dev.tsv", ["index\tquestion\tsentence\tlabel", "0\tQ?\tS.\tentailment"])
    with pytest.raises(DataError, match=str(tmp_path / "QNLI" / "train.tsv")):
        load_split("QNLI", "train", tmp_path)
    monkeypatch.setenv("THESEUS_GLUE_DIR", str(tmp_path))
    assert resolve_glue_dir(None) == tmp_path and len(load_split("qnli", "dev")) == 1
    assert resolve_glue_dir("/x") == Path("/x")
    monkeypatch.delenv("THESEUS_GLUE_DIR")
    assert resolve_glue_dir(None) is None


# ---- tokenisation, cache, dynamic padding -----------------------------------

@pytest.fixture
def tokenizer(tmp_path):
    from transformers import BertTokenizerFast

    words = "the a cat dog sat on mat ran far away very good bad movie".split()
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tok = BertTokenizerFast.from_pretrained(str(folder))  # works on transformers 4 and 5
    assert tok("the cat")["input_ids"] == [2, 5, 7, 3]  # vocab really loaded, no [UNK]
    return tok


def _mrpc(tmp_path):
    write(tmp_path, "MRPC/train.tsv", [
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        "1\t1\t2\tthe cat\tthe dog",
        "0\t3\t4\tthe cat sat on the mat very far away\tthe dog ran far away",
        "1\t5\t6\ta cat\ta dog",
        "0\t7\t8\tgood\tbad"])
    return load_split("MRPC", "train", tmp_path)


def test_dynamic_padding(tmp_path, tokenizer):
    ds = tokenize_split(_mrpc(tmp_path), tokenizer, "MRPC", max_seq_length=64,
                        cache_dir=tmp_path / "cache")
    assert {"input_ids", "token_type_ids", "attention_mask", "labels"} == set(ds.column_names)
    assert ds["labels"] == [1, 0, 1, 0]
    lengths = [len(x) for x in ds["input_ids"]]  # [CLS] a [SEP] b [SEP]
    assert lengths == [7, 17, 7, 5]
    batches = list(make_dataloader(ds, tokenizer, batch_size=2, shuffle=False))
    assert batches[0]["input_ids"].shape == (2, 17)  # own longest, not 64
    assert batches[1]["input_ids"].shape == (2, 7)
    assert batches[1]["attention_mask"].tolist() == [[1] * 7, [1] * 5 + [0, 0]]
    assert str(batches[0]["labels"].dtype) == "torch.int64"
    # truncation to max_seq_length, pairs included
    short = tokenize_split(_mrpc(tmp_path), tokenizer, "MRPC", 8, cache_dir=tmp_path / "cache")
    assert max(len(x) for x in short["input_ids"]) == 8

    # seeded shuffling is reproducible
    def order(s):
        return [b["labels"].tolist() for b in make_dataloader(ds, tokenizer, 1, True, s)]

    assert order(3) == order(3)


def test_tokenize_cache_reused(tmp_path, tokenizer, monkeypatch):
    import datasets

    cache = tmp_path / "cache"
    first = tokenize_split(_mrpc(tmp_path), tokenizer, "MRPC", 32, cache_dir=cache)
    entries = [p for p in cache.iterdir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # no temp dir left

    def boom(*a, **k):
        raise AssertionError("re-tokenised despite a cache entry")

    monkeypatch.setattr(datasets.Dataset, "map", boom)
    again = tokenize_split(_mrpc(tmp_path), tokenizer, "MRPC", 32, cache_dir=cache)
    assert again["input_ids"] == first["input_ids"]
    with pytest.raises(AssertionError, match="re-tokenised"):  # a new key does tokenise
        tokenize_split(_mrpc(tmp_path), tokenizer, "MRPC", 16, cache_dir=cache)


def test_stsb_labels_float(tmp_path, tokenizer):
    write(tmp_path, "STS-B/dev.tsv", ["index\tsentence1\tsentence2\tscore",
                                      "0\tthe cat\tthe dog\t3.5", "1\ta cat\ta mat\t1.25"])
    ds = tokenize_split(load_split("STS-B", "dev", tmp_path), tokenizer, "STS-B", 16,
                        cache_dir=tmp_path / "c")
    batch = next(iter(make_dataloader(ds, tokenizer, 2, False)))
    assert str(batch["labels"].dtype) == "torch.float32"
    assert batch["labels"].tolist() == [3.5, 1.25]


# ---- the real GLUE files ----------------------------------------------------

def _real_glue_dir() -> Path | None:
    for cand in (os.environ.get("THESEUS_GLUE_DIR"),
                 Path(__file__).resolve().parents[2] / "shared" / "glue"):
        if cand and (Path(cand) / "CoLA").is_dir():
            return Path(cand)
    return None


# read at import: the session fixture in conftest.py unsets $THESEUS_GLUE_DIR for the tests
REAL_GLUE_DIR = _real_glue_dir()

OFFICIAL_ROWS = {  # data rows, from SOURCES.md / the GLUE paper
    ("CoLA", "train"): 8551, ("CoLA", "dev"): 1043, ("CoLA", "test"): 1063,
    ("SST-2", "train"): 67349, ("SST-2", "dev"): 872, ("SST-2", "test"): 1821,
    ("MRPC", "train"): 3668, ("MRPC", "dev"): 408, ("MRPC", "test"): 1725,
    ("STS-B", "train"): 5749, ("STS-B", "dev"): 1500, ("STS-B", "test"): 1379,
    ("QQP", "train"): 363846, ("QQP", "dev"): 40430, ("QQP", "test"): 390965,
    ("MNLI", "train"): 392702, ("MNLI", "dev_matched"): 9815,
    ("MNLI", "dev_mismatched"): 9832, ("MNLI", "test_matched"): 9796,
    ("MNLI", "test_mismatched"): 9847,
    ("QNLI", "train"): 104743, ("QNLI", "dev"): 5463, ("QNLI", "test"): 5463,
    ("RTE", "train"): 2490, ("RTE", "dev"): 277, ("RTE", "test"): 3000,
    ("WNLI", "train"): 635, ("WNLI", "dev"): 71, ("WNLI", "test"): 146,
    ("AX", "test"): 1104,
}


@pytest.mark.skipif(REAL_GLUE_DIR is None, reason="real GLUE data not available")
def test_real_glue_files_row_counts():
    root = REAL_GLUE_DIR
    checked = 0
    for task in TASKS.values():
        for split in task.splits:
            if not task.tsv_path(root, split).is_file():
                continue  # MNLI, QQP, QNLI/train are absent here (SOURCES.md)
            cols = read_tsv_split(task, split, root)
            assert len(cols["idx"]) == OFFICIAL_ROWS[task.name, split], (task.name, split)
            labels = set(cols["label"])
            if task.is_test(split):
                assert labels == {-1}
            elif not task.is_regression:
                assert labels == set(range(task.num_labels))
            checked += 1
    assert checked >= 20
