"""Shared fixtures: a tiny random BERT, a generated GLUE folder, CLI workspaces.

Everything is tiny (hidden 32, 4 layers, ~50 training rows) so the whole CLI
pipeline runs in seconds on a CPU. No network: the model is a local directory
and the data is a local GLUE-layout folder.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

# Rich wraps messages at the console width, which CliRunner leaves at 80;
# a wide console keeps error messages on one line for substring checks.
# (Set before theseus_cli.cli.app is imported: rich reads COLUMNS at construction.)
os.environ["COLUMNS"] = "400"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import yaml  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = sorted(set("""
the a an this that one two three some many cat dog bird fish horse cow sheep goat mouse lion
tiger bear wolf fox deer man woman child boy girl teacher doctor farmer king queen friend
house mat car boat train plane road river lake sea hill tree flower garden field forest city town
village school shop market office table chair bed door window book pen paper letter song game
ball cup plate bread milk water tea coffee apple orange cake rice soup meat egg cheese sat ran
walked jumped swam flew ate drank read wrote sang played saw heard found lost made took gave
bought sold opened closed liked loved hated wanted needed helped watched called met left came
went stayed slept woke cooked cleaned painted built fixed broke carried pushed pulled threw
caught on in at under over near behind beside into onto from to with without by for of and
but or very quite really too big small old new young good bad happy sad fast slow red blue
green yellow black white long short tall hot cold warm early late today yesterday quickly
slowly again never always often soon here there is was are were has had will did not
""".split()))
SUBJECTS = [w for w in WORDS if w in {"cat", "dog", "bird", "man", "woman", "child", "boy",
                                       "girl", "teacher", "doctor", "farmer", "king", "queen",
                                       "friend", "horse", "fox"}]
VERBS = [w for w in WORDS if w in {"sat", "ran", "walked", "jumped", "ate", "read", "saw",
                                    "found", "made", "liked", "watched", "cooked", "painted"}]
OBJECTS = [w for w in WORDS if w in {"house", "car", "boat", "tree", "garden", "book", "ball",
                                      "cup", "bread", "apple", "cake", "table", "river", "road"}]
ADJS = [w for w in WORDS if w in {"big", "small", "old", "new", "red", "blue", "green", "happy",
                                   "sad", "tall", "warm", "cold"}]


def sentence(rng: random.Random) -> str:
    return (f"the {rng.choice(ADJS)} {rng.choice(SUBJECTS)} {rng.choice(VERBS)} "
            f"the {rng.choice(OBJECTS)} {rng.choice(['today', 'yesterday', 'again', 'quickly'])} .")


def pairs(rng: random.Random, n: int) -> list[tuple[str, str, int]]:
    """n sentence pairs; label 1 (every second row) when both sentences are equal."""
    out = []
    for i in range(n):
        a = sentence(rng)
        if i % 2 == 0:
            out.append((a, a, 1))
        else:
            b = sentence(rng)
            while b == a:
                b = sentence(rng)
            out.append((a, b, 0))
    return out


def _write(path: Path, lines: list[str], bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def write_glue(root: Path, seed: int = 0) -> Path:
    """A GLUE-layout folder with MRPC, RTE and STS-B, headers as in the real files."""
    rng = random.Random(seed)
    sizes = {"train": 48, "dev": 20, "test": 10}
    # MRPC: BOM + "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"; test has an index column
    for split in ("train", "dev"):
        rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        for i, (a, b, y) in enumerate(pairs(rng, sizes[split])):
            rows.append(f"{y}\t{1000 + 2 * i}\t{1001 + 2 * i}\t{a}\t{b}")
        _write(root / "MRPC" / f"{split}.tsv", rows, bom=True)
    rows = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    rows += [f"{i}\t{5000 + 2 * i}\t{5001 + 2 * i}\t{a}\t{b}"
             for i, (a, b, _) in enumerate(pairs(rng, sizes["test"]))]
    _write(root / "MRPC" / "test.tsv", rows)
    # RTE: index, sentence1, sentence2, label (entailment / not_entailment)
    for split in ("train", "dev"):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        rows += [f"{i}\t{a}\t{b}\t{'entailment' if y else 'not_entailment'}"
                 for i, (a, b, y) in enumerate(pairs(rng, sizes[split]))]
        _write(root / "RTE" / f"{split}.tsv", rows)
    rows = ["index\tsentence1\tsentence2"]
    rows += [f"{i}\t{a}\t{b}" for i, (a, b, _) in enumerate(pairs(rng, sizes["test"]))]
    _write(root / "RTE" / "test.tsv", rows)
    # STS-B: 10 columns with the score last (test: 9 columns, no score)
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
    for split in ("train", "dev"):
        rows = [head + "\tscore"]
        for i, (a, b, y) in enumerate(pairs(rng, sizes[split])):
            score = 5.0 if y else round(rng.uniform(0.0, 2.0), 3)
            rows.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}"
                        f"\t{score:.3f}")
        _write(root / "STS-B" / f"{split}.tsv", rows)
    rows = [head] + [f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}"
                     for i, (a, b, _) in enumerate(pairs(rng, sizes["test"]))]
    _write(root / "STS-B" / "test.tsv", rows)
    return root


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="session", autouse=True)
def _isolated_caches(tmp_path_factory):
    """Tokenisation cache (platformdirs user cache) and HF caches under a tmp dir."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        mp.setenv("HF_HOME", str(cache / "hf"))
        mp.delenv("THESEUS_GLUE_DIR", raising=False)
        try:
            import torch

            torch.set_num_threads(1)  # a light footprint next to other jobs
        except ImportError:  # pragma: no cover
            pass
        yield cache


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 4-layer BERT (hidden 32) + WordPiece tokenizer, saved with save_pretrained."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    root = tmp_path_factory.mktemp("tiny-bert")
    vocab = [*SPECIAL, *WORDS, "."]
    tok_dir = root / "vocab"
    tok_dir.mkdir()
    (tok_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(tok_dir))
    ids = tokenizer("the cat sat on the mat .")["input_ids"]
    assert tokenizer.unk_token_id not in ids
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=128))
    out = root / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory) -> Path:
    return write_glue(tmp_path_factory.mktemp("glue"))


FAST = {
    "runtime": {"device": "cpu"},
    "finetune-teacher": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16,
                         "learning_rate": 1e-3},
    "replace": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16, "learning_rate": 1e-3,
                "schedulers": {"linear": {"steps_to_one": 4}}},
    "finetune-successor": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16,
                           "learning_rate": 1e-3},
    "truncate": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16},
    "distill": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16},
    "pkd": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16},
    "layerdrop": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16},
    "evaluate": {"eval_batch_size": 16, "speed_repeats": 1, "speed_batches": 1},
    "export": {"check_examples": 8},
}


def _merge(base: dict, updates: dict) -> dict:
    out = dict(base)
    for k, v in updates.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def set_yaml(ws: Path, updates: dict, remove: tuple[tuple[str, str], ...] = ()) -> None:
    """Deep-merge ``updates`` into a workspace's theseus.yaml; drop ``(section, key)``s."""
    path = ws / "theseus.yaml"
    doc = _merge(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, updates)
    for section, key in remove:
        (doc.get(section) or {}).pop(key, None)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def read_yaml(ws: Path) -> dict:
    return yaml.safe_load((ws / "theseus.yaml").read_text(encoding="utf-8"))


def cli(*args: str, ok: bool = True):
    """Run ``theseus ARGS`` in-process; with ``ok`` assert exit code 0."""
    from typer.testing import CliRunner

    from theseus_cli.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def make_workspace(path: Path, model_dir: Path, glue: Path, fast: bool = True) -> Path:
    result = cli("init", path, "--model", model_dir, "--glue-dir", glue)
    assert "workspace ready" in result.output
    if fast:
        set_yaml(path, FAST)
    return path


@pytest.fixture
def workspace(tmp_path, tiny_model_dir, glue_dir) -> Path:
    """A fresh, fast workspace (MRPC, tiny model, cpu) with no artifacts."""
    return make_workspace(tmp_path / "ws", tiny_model_dir, glue_dir)


def copy_workspace(src: Path, dest: Path) -> Path:
    """Copy a workspace; its glue_dir is made absolute so it still resolves from ``dest``.

    The pipeline fingerprint uses the *resolved* GLUE path, so the copy's
    artifacts stay up to date.
    """
    from theseus_cli.workspace.config import load_config

    glue = load_config(src).glue_dir()
    shutil.copytree(src, dest)
    set_yaml(dest, {"data": {"glue_dir": str(glue)}})
    return dest


def versions(ws: Path, stage: str, task: str = "MRPC") -> list[str]:
    """Version directory names of a stage, sorted by number."""
    d = ws / "artifacts" / task / stage
    if not d.is_dir():
        return []
    return sorted((p.name for p in d.iterdir() if p.name.startswith("v")),
                  key=lambda n: int(n[1:]))


def manifest(ws: Path, stage: str, version: str = "v1", task: str = "MRPC") -> dict:
    import json

    return json.loads((ws / "artifacts" / task / stage / version / "manifest.json").read_text())


def write_dataset(ds, path: Path, fmt: str) -> Path:
    """Write a ``datasets.Dataset`` at ``path`` as ``fmt``: csv, jsonl, parquet, or saved
    (``save_to_disk``, a DatasetDict with a train split)."""
    import datasets

    if fmt == "csv":
        ds.to_csv(str(path), index=False)
    elif fmt == "jsonl":
        ds.to_json(str(path))
    elif fmt == "parquet":
        ds.to_parquet(str(path))
    else:
        datasets.DatasetDict({"train": ds}).save_to_disk(str(path))
    return path


def flat(text: str) -> str:
    """Output with all whitespace runs collapsed (robust to console wrapping)."""
    return " ".join(text.split())


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_model_dir, glue_dir):
    """One workspace that ran the whole MRPC pipeline; returns (path, outputs by command).

    Shared by many tests: never modify it; copy it with ``copy_workspace``.
    """
    ws = make_workspace(tmp_path_factory.mktemp("trained") / "ws", tiny_model_dir, glue_dir)
    outputs = {}
    for cmd in (["replace", "--scheduler", "linear"], ["finetune-successor"], ["evaluate"],
                ["export"]):
        outputs[cmd[0]] = cli(*cmd, "--workspace", ws).output
    return ws, outputs


@pytest.fixture(scope="session")
def models(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Tiny models of other families and broken model directories."""
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        Qwen2Config,
        Qwen2ForSequenceClassification,
        RoFormerConfig,
        RoFormerForSequenceClassification,
    )

    root = tmp_path_factory.mktemp("models")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    vocab = tok.vocab_size
    torch.manual_seed(0)
    built = {
        "roformer": RoFormerForSequenceClassification(RoFormerConfig(  # a family theseus lacks
            vocab_size=vocab, hidden_size=32, embedding_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=37, max_position_embeddings=128)),
        "qwen2-mixed": Qwen2ForSequenceClassification(Qwen2Config(  # full, then sliding
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, intermediate_size=37, use_sliding_window=True,
            max_window_layers=1, pad_token_id=0)),
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
