"""Every built-in family through the default recipe on real text of varied lengths.

A tiny random model of each family, with the embedded model's tokenizer and
vocabulary (pad id 0), runs ``replace`` -> ``finetune-successor`` -> ``evaluate`` ->
``export --format hf,onnx`` in batches of 16: real MRPC rows when the GLUE data is
present (``$THESEUS_GLUE_DIR`` or ``../shared/glue``), else generated sentences of 5 to
60 words. Padded batches of sentences of different lengths are what broke the decoder
families (a KV cache shared between a successor module and a predecessor layer). The
exported model is then read back by stock ``transformers`` and ``onnxruntime`` and their
logits compared on padded batches.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import WORDS, cli, manifest, set_yaml
from tiny_models import tiny_configs

from theseus_cli.data.sources import checkout_glue_dir

ROOT = Path(__file__).resolve().parents[1]
REAL_GLUE = checkout_glue_dir(ROOT)
HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
SIZES = {"train": 32, "dev": 16}


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))) + " ."


@pytest.fixture(scope="module")
def text_glue(tmp_path_factory) -> Path:
    """MRPC with real rows (the first 64 train and 32 dev pairs) or generated ones."""
    root = tmp_path_factory.mktemp("glue-text") / "MRPC"
    root.mkdir()
    real = REAL_GLUE / "MRPC"
    rng = random.Random(0)
    for split, n in SIZES.items():
        if (real / f"{split}.tsv").is_file():
            lines = (real / f"{split}.tsv").read_text(encoding="utf-8-sig").splitlines()[1:n + 1]
        else:
            lines = [f"{i % 2}\t{i}\t{i + 1}\t{_sentence(rng)}\t{_sentence(rng)}"
                     for i in range(n)]
        (root / f"{split}.tsv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return root.parent


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    from theseus_cli.model.loading import resolve_model_source

    out = tmp_path_factory.mktemp("embedded-tokenizer")
    AutoTokenizer.from_pretrained(resolve_model_source("embedded")).save_pretrained(out)
    return out


def _model_dir(model_type: str, tokenizer_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_configs(tokenizer.vocab_size)[model_type]
    config.num_labels, config.pad_token_id = 2, tokenizer.pad_token_id
    if model_type == "gpt2":
        config.bos_token_id = config.eos_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


#: one model type per built-in family (XLM-R, Qwen2 and Mistral share RoBERTa's and Llama's
#: code paths here; tests/test_families.py runs every model type in-process)
PIPELINE_TYPES = ("bert", "roberta", "mpnet", "electra", "distilbert", "deberta-v2", "albert",
                  "modernbert", "llama", "gpt2")


@pytest.mark.parametrize("model_type", PIPELINE_TYPES)
def test_default_recipe_and_export_on_padded_real_text(model_type, tmp_path, text_glue,
                                                       tokenizer_dir):
    import numpy as np
    import onnxruntime
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = _model_dir(model_type, tokenizer_dir, tmp_path / "model")
    ws = tmp_path / "ws"
    cli("init", ws, "--model", model, "--glue-dir", text_glue)
    stage = {"epochs": 1, "batch_size": 16, "eval_batch_size": 16, "learning_rate": 1e-3}
    set_yaml(ws, {"runtime": {"device": "cpu"}, "finetune-teacher": stage, "replace": stage,
                  "finetune-successor": stage,
                  "evaluate": {"eval_batch_size": 16, "speed_repeats": 1, "speed_batches": 1},
                  "export": {"check_examples": 16, "card_speed": False}})
    for command in (["replace"], ["finetune-successor"], ["evaluate"],
                    ["export", "--format", "hf,onnx"]):
        cli(*command, "-w", ws)
    info = manifest(ws, "replace")["info"]
    assert info["optimizer_steps"] == SIZES["train"] // 16
    # the family plugin that took it (its name is the model type's here), L/2 modules
    assert info["family"] == model_type and info["modules"] == info["predecessor_layers"] // 2
    assert manifest(ws, "export")["info"]["layers"] == info["modules"]

    export = ws / "artifacts" / "MRPC" / "export" / "v1"
    tokenizer = AutoTokenizer.from_pretrained(export / "model")
    stock = AutoModelForSequenceClassification.from_pretrained(export / "model").eval()
    rows = (text_glue / "MRPC" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:17]
    pairs = [row.split("\t")[3:5] for row in rows]
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True,
                    truncation=True, max_length=128, return_tensors="pt")
    assert int(enc["attention_mask"].sum(1).min()) < enc["input_ids"].shape[1]  # padded
    with torch.no_grad():
        expected = stock(**enc).logits.numpy()
    session = onnxruntime.InferenceSession(str(export / "onnx" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    feed = {i.name: enc[i.name].numpy().astype(np.int64) for i in session.get_inputs()}
    got = session.run(["logits"], feed)[0]
    assert np.isfinite(expected).all()
    assert np.abs(got - expected).max() <= 1e-4, (model_type, np.abs(got - expected).max())
