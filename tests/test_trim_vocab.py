"""Vocabulary trimming: exact on kept tokens, smaller, its tokenizer saved and used by
evaluate and export, BPE and bad settings refused before any work."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import cli, flat, manifest, set_yaml, versions

from theseus_cli.errors import ConfigError
from theseus_cli.model import vocabulary as vocab


def _tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_trimmed_tokenizer_and_embedding_give_the_same_logits(tiny_model_dir, tmp_path):
    """Texts whose tokens are kept: the same tokens renumbered, the same logits; specials
    always kept; an unseen word becomes [UNK] without characters."""
    from transformers import AutoModelForSequenceClassification

    tok = _tokenizer(tiny_model_dir)
    texts = ["the cat sat on the mat .", "the dog"]
    kept = vocab.kept_ids(tok, tok(texts)["input_ids"], characters=False)
    assert set(tok.all_special_ids) <= set(kept) and len(kept) < len(tok)
    trimmed = vocab.trim_tokenizer(tok, kept, tmp_path / "tok")
    new_id = {old: new for new, old in enumerate(kept)}
    for text in texts:
        assert trimmed(text)["input_ids"] == [new_id[i] for i in tok(text)["input_ids"]]
    assert trimmed("the horse")["input_ids"][2] == trimmed.unk_token_id
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    before = model(**tok(texts, padding=True, return_tensors="pt")).logits
    vocab.trim_embedding(model, kept)
    assert model.get_input_embeddings().weight.shape[0] == len(kept) == model.config.vocab_size
    after = model(**trimmed(texts, padding=True, return_tensors="pt")).logits
    assert torch.allclose(before, after, atol=1e-6)


def test_byte_level_bpe_is_refused_by_name():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel()
    backend.train_from_iterator(["the cat sat on the mat"] * 5,
                                trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"]))
    bpe = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    with pytest.raises(ConfigError, match="is BPE, not WordPiece: its tokens are built by merges"):
        vocab.check_trimmable(bpe)


def test_reference_text_adds_its_most_frequent_tokens(tiny_model_dir, tmp_path):
    tok = _tokenizer(tiny_model_dir)
    ref = tmp_path / "ref.txt"
    ref.write_text("horse horse horse milk milk city\n", encoding="utf-8")
    ids = vocab.reference_ids(tok, ref, top=2)
    assert ids == set(tok.convert_tokens_to_ids(["horse", "milk"]))


def _trained(workspace):
    for stage in ("finetune-teacher", "replace", "finetune-successor"):
        cli(stage, "-w", workspace)


def test_trim_vocab_publishes_a_smaller_successor_that_evaluates_and_exports(workspace):
    _trained(workspace)
    out = flat(cli("trim-vocab", "-w", workspace).output)
    m = manifest(workspace, "trim-vocab")
    info, source = m["info"], manifest(workspace, "finetune-successor")
    assert info["vocab_after"] == m["metrics"]["vocab_size"] < info["vocab_before"]
    assert info["parameters"]["total"] < source["info"]["parameters"]["total"]
    assert m["metrics"]["score"] == pytest.approx(source["metrics"]["score"])  # no training
    assert info["method"].startswith("theseus 2L") and ", vocab 0." in info["method"]
    assert "dev: 0.00% of the tokens are outside the kept vocabulary" in out
    model_dir = workspace / "artifacts/MRPC/trim-vocab/v1/model"
    saved = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(saved["model"]["vocab"]) == info["vocab_after"]
    table = flat(cli("evaluate", "--successor", "trim-vocab", "-w", workspace).output)
    assert info["method"] in table and "vocabulary trimmed from" in table
    ev = manifest(workspace, "evaluate")["metrics"]
    assert ev["successor_score"] == pytest.approx(m["metrics"]["score"])
    out = flat(cli("export", "--successor", "trim-vocab", "--format", "hf,onnx",
                   "-w", workspace).output)
    assert "exported: hf" in out
    from transformers import AutoModelForSequenceClassification
    exported = next((workspace / "artifacts/MRPC/export").glob("v*/model"))
    stock = AutoModelForSequenceClassification.from_pretrained(exported)
    assert stock.config.vocab_size == info["vocab_after"]
    cli("benchmark", "-w", workspace, "--batch-sizes", "1", "--seq-lengths", "8",
        "--dev-batches", "1", "--min-seconds", "0", "--min-iters", "1", "--warmup", "0",
        "--no-isolate")  # the teacher and the trimmed successor, each on its own dev ids
    report = json.loads(next((workspace / "artifacts/MRPC/benchmark").glob("v*/benchmark.json"))
                        .read_text(encoding="utf-8"))
    assert {r["format"] for r in report["rows"]} == {"pytorch fp32", "onnx"}


def _disjoint_task(tmp_path, model_dir):
    """A user's CSV task whose dev rows use words the training rows never use."""
    import csv

    from conftest import FAST, WORDS

    half = len(WORDS) // 2
    for name, words in (("train", WORDS[:half]), ("dev", WORDS[half:])):
        with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(("text", "label"))
            w.writerows((" ".join(words[(i + k) % len(words)] for k in range(5)), "ab"[i % 2])
                        for i in range(24))
    ws = tmp_path / "disjoint"
    cli("init", ws, "--model", model_dir, "--task", "disjoint", "--train", tmp_path / "train.csv",
        "--validation", tmp_path / "dev.csv")
    set_yaml(ws, FAST)
    return ws


@pytest.mark.parametrize("args, expect", [
    (["--no-keep-characters"], "of the dev tokens would become [UNK] (--max-unknown 0.05)"),
    (["--reference", "missing.txt"], "--reference missing.txt: no such file"),
    (["--successor", "evaluate"], "--successor evaluate: not a stage that produces a successor"),
])
def test_bad_trim_settings_are_refused_and_nothing_is_published(tmp_path, tiny_model_dir, args,
                                                                 expect):
    ws = _disjoint_task(tmp_path, tiny_model_dir)
    for stage in ("finetune-teacher", "replace", "finetune-successor"):
        cli(stage, "-w", ws)
    result = cli("trim-vocab", *args, "-w", ws, ok=False)
    assert result.exit_code != 0 and expect in flat(result.output), flat(result.output)
    assert versions(ws, "trim-vocab", task="disjoint") == []


def test_characters_keep_unseen_words_spelled_out(tmp_path):
    """With characters kept (the default), a word the training text never used is spelled
    out in kept single characters instead of becoming [UNK]."""
    import string

    from conftest import SPECIAL
    from transformers import BertTokenizerFast

    letters = list(string.ascii_lowercase)
    (tmp_path / "vocab.txt").write_text("\n".join(
        [*SPECIAL, "the", "cat", "dog", *letters, *("##" + c for c in letters)]) + "\n")
    tok = BertTokenizerFast.from_pretrained(str(tmp_path))
    kept = vocab.kept_ids(tok, tok(["the cat"])["input_ids"], characters=True)
    assert tok.convert_tokens_to_ids("dog") not in kept
    trimmed = vocab.trim_tokenizer(tok, kept, tmp_path / "trimmed")
    assert trimmed.tokenize("the dog") == ["the", "d", "##o", "##g"]
    assert vocab.unknown_share(trimmed, [trimmed("the dog")["input_ids"]]) == 0.0
