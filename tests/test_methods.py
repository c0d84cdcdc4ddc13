"""Baselines (truncate, distill), distillation, seeds and honest numbers, on a tiny BERT."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch
from conftest import cli, copy_workspace, flat, manifest, versions

from theseus_cli.plugin import registry


def kd_loss(student, teacher, labels, alpha, temperature, regression):
    kind = registry.task_kind("regression" if regression else "sequence-classification")
    return kind.distill_loss(student, teacher, {"labels": labels}, alpha, temperature)


# ------------------------------------------------------------------ KD loss
def test_kd_loss_matches_hand_computed_values():
    s = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 1])
    T, a = 2.0, 0.25

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    ce = statistics.fmean(-math.log(softmax(row)[k]) for row, k in zip(s.tolist(), y.tolist(), strict=False))
    kl = statistics.fmean(
        sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in
            zip(softmax([x / T for x in tr]), softmax([x / T for x in sr]), strict=False))
        for sr, tr in zip(s.tolist(), t.tolist(), strict=False))
    want = (1 - a) * ce + a * T * T * kl
    assert kd_loss(s, t, y, a, T, regression=False).item() == pytest.approx(want, rel=1e-6)
    assert kd_loss(s, t, y, 0.0, T, regression=False).item() == pytest.approx(ce, rel=1e-6)
    # regression (STS-B): MSE to the gold score and to the teacher's score
    s1, t1, y1 = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [2.0]]), torch.tensor([1.5, 2.5])
    want = (1 - a) * ((0.5 ** 2 + 0.5 ** 2) / 2) + a * ((1 + 1) / 2)
    assert kd_loss(s1, t1, y1, a, T, regression=True).item() == pytest.approx(want)


def test_token_level_kd_loss_averages_over_labelled_tokens():
    """Token classification: CE and KL over tagged words only (-100 ignored): the teacher
    was never trained on continuation sub-tokens, [CLS]/[SEP] or padding."""
    kind = registry.task_kind("token-classification")
    tagger = registry.task_kind("sequence-classification")
    s = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (B=1, L=3, C=2)
    t = torch.tensor([[[1.0, 1.0], [0.0, 3.0], [0.0, 0.0]]])
    labels = torch.tensor([[0, -100, -100, 1]])  # words at 1 and 4; 2 a continuation
    mask = torch.tensor([[1, 1, 0, 1]])  # the third position is padding
    s = torch.cat([s, torch.tensor([[[0.5, -1.0]]])], dim=1)  # (B=1, L=4, C=2)
    t = torch.cat([t, torch.tensor([[[2.0, 0.0]]])], dim=1)
    T, a = 2.0, 0.25
    got = kind.distill_loss(s, t, {"labels": labels, "attention_mask": mask}, a, T).item()
    tagged = torch.tensor([0, 3])
    ce = torch.nn.functional.cross_entropy(s[0, tagged], labels[0, tagged]).item()
    kl = (tagger.distill_loss(s[0, tagged], t[0, tagged], {"labels": labels[0, tagged]}, 1.0,
                              T) / (T * T)).item()  # mean KL over the two tagged words
    assert got == pytest.approx((1 - a) * ce + a * T * T * kl, rel=1e-6)
    # the continuation sub-token's logits do not count, whatever they are
    s2, t2 = s.clone(), t.clone()
    s2[0, 1], t2[0, 1] = torch.tensor([9.0, -9.0]), torch.tensor([-9.0, 9.0])
    again = kind.distill_loss(s2, t2, {"labels": labels, "attention_mask": mask}, a, T).item()
    assert again == pytest.approx(got, rel=1e-6)


# --------------------------------------------------- baselines and evaluate
@pytest.fixture(scope="module")
def methods(trained, tmp_path_factory):
    """The trained workspace plus truncate, distill and a Theseus + KD variant."""
    ws = copy_workspace(trained[0], tmp_path_factory.mktemp("methods") / "ws")
    out = {name: cli(*args, "-w", ws).output for name, args in {
        "truncate": ["truncate"],
        "distill": ["distill", "--distill-weight", "0.7", "--temperature", "3"],
        "replace-kd": ["replace", "--distill-weight", "0.5"],
        "finetune-kd": ["finetune-successor", "--distill-weight", "0.5"],
        "evaluate": ["evaluate"],
    }.items()}
    return ws, out


def test_baselines_publish_n_layer_stock_models(methods):
    ws, _ = methods
    from transformers import AutoModelForSequenceClassification

    for stage in ("truncate", "distill"):
        m = manifest(ws, stage)
        assert m["info"]["layers"] == 2 and m["info"]["predecessor_layers"] == 4
        model = AutoModelForSequenceClassification.from_pretrained(
            ws / "artifacts" / "MRPC" / stage / "v1" / "model")
        assert model.config.num_hidden_layers == 2 and len(model.bert.encoder.layer) == 2
    assert manifest(ws, "truncate")["info"]["method"] == "truncate 2L, task loss"
    assert manifest(ws, "distill")["info"]["method"] == "distill 2L + KD α=0.7"
    assert manifest(ws, "distill")["info"]["recipe"] == ("distill 2L, at most 1 epoch at lr 0.0001 "
                                                         "+ KD α=0.7 T=3")
    assert manifest(ws, "distill")["info"]["distillation"]["temperature"] == 3.0


def test_teacher_logits_are_computed_once_per_teacher(methods):
    ws, out = methods
    kinds = [manifest(ws, "distill")["info"]["distillation"]["teacher_logits"],
             manifest(ws, "replace", "v2")["info"]["distillation"]["teacher_logits"],
             manifest(ws, "finetune-successor", "v2")["info"]["distillation"]["teacher_logits"]]
    assert kinds == ["computed", "cached", "cached"]
    text = flat(" ".join(out.values()))
    assert text.count("computing the teacher's logits") == 1
    cache = list((ws / "artifacts/MRPC/finetune-teacher/.logits").glob("v1-*/logits.safetensors"))
    assert len(cache) == 1
    from safetensors.torch import load_file
    logits = load_file(str(cache[0]))["logits"]
    assert logits.shape == (48, 2) and torch.isfinite(logits).all()


def test_evaluate_shows_one_row_per_method(methods):
    ws, out = methods
    text = flat(out["evaluate"])
    for label in ("teacher (fine-tuned predecessor)", "theseus 2L, task loss",
                  "theseus 2L + KD α=0.5", "truncate 2L, task loss", "distill 2L + KD α=0.7",
                  "Recipes:", "theseus 2L + KD α=0.5: theseus 2L, linear b=0.3 steps_to_one=4 "
                  "+ KD (replace) α=0.5 T=2 + KD (finetune) α=0.5 T=2", "majority class"):
        assert label in text, label
    latest = versions(ws, "glue-table", "GLUE")[-1]
    table = json.loads((ws / "artifacts/GLUE/glue-table" / latest / "tables.json").read_text())["MRPC"]
    methods_ = [r["method"] for r in table]
    assert methods_[0].startswith("teacher") and methods_[-1].startswith("majority")
    assert len(methods_) == 6  # teacher, theseus, theseus + KD, truncate, distill, majority
    for row in table[1:-1]:
        assert row["layers"] == 2 and row["score"]["n"] == 1 and row["seconds"]["median"] > 0
    majority = table[-1]["score"]["median"]
    # the generated MRPC train set alternates labels 1, 0: class 0 wins ties; dev is 50/50
    assert majority == pytest.approx((0.0 + 0.5) / 2)  # F1 0, accuracy 0.5


def test_export_any_successor(methods):
    ws, _ = methods
    out = flat(cli("export", "--successor", "truncate", "-w", ws).output)
    assert "published MRPC/export/v" in out
    m = manifest(ws, "export", versions(ws, "export")[-1])
    ev = m["inputs"]["evaluate"]["version"]
    assert manifest(ws, "evaluate", ev)["params"]["successor"] == "truncate"
    card = (ws / "artifacts/MRPC/export" / versions(ws, "export")[-1] / "model/README.md").read_text()
    assert "the `truncate 2L, task loss` baseline" in card
    bad = cli("evaluate", "--successor", "replace", "-w", ws, ok=False)
    assert bad.exit_code == 2 and "not a stage that produces a successor; accepted:" in flat(bad.output)


# -------------------------------------------------------------------- seeds
def test_seeds_are_versions_with_their_own_lineage_and_median(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    cli("finetune-successor", "--seeds", "43,44", "-w", ws)
    assert versions(ws, "replace") == ["v1", "v2", "v3"]
    assert versions(ws, "finetune-successor") == ["v1", "v2", "v3"]
    for v, seed in (("v2", 43), ("v3", 44)):
        m = manifest(ws, "finetune-successor", v)
        assert m["config"]["runtime"]["seed"] == seed
        rep = manifest(ws, "replace", m["inputs"]["replace"]["version"])
        assert rep["config"]["runtime"]["seed"] == seed  # its own seed's replace
        assert rep["inputs"]["finetune-teacher"]["version"] == "v1"  # one teacher for all
    text = flat(cli("evaluate", "-w", ws).output)
    rows = json.loads((ws / "artifacts/GLUE/glue-table" / versions(ws, "glue-table", "GLUE")[-1]
                       / "tables.json").read_text())["MRPC"]
    theseus = next(r for r in rows if r["method"].startswith("theseus"))
    scores = [manifest(ws, "evaluate", f"v{i}")["metrics"]["successor_score"] for i in (1, 2, 3)]
    assert theseus["score"]["n"] == 3 and sorted(theseus["seeds"]) == [42, 43, 44]
    assert theseus["score"]["median"] == pytest.approx(statistics.median(scores))
    assert theseus["score"]["std"] == pytest.approx(statistics.stdev(scores))
    assert f"({3})" in text
    status = flat(cli("status", "-w", ws).output)
    assert "over 3 seeds" in status
    bad = cli("finetune-successor", "--seeds", "two", "-w", ws, ok=False)
    assert bad.exit_code == 2 and "--seeds 'two'" in flat(bad.output)


# ------------------------------------------------------------ honest numbers
def test_degenerate_predictions_are_flagged():
    from theseus_builtin.stages.evaluate import degenerate_warning

    majority = {"score": 0.75}
    assert "97.0% one class" in degenerate_warning("successor", {"score": 0.8}, majority, 0.97)
    assert "within a point of the majority class" in degenerate_warning(
        "successor", {"score": 0.755}, majority, 0.6)
    assert degenerate_warning("successor", {"score": 0.85}, majority, 0.6) is None


# ------------------------------------------------- selection on a held-out slice
def test_holdout_selection_keeps_dev_unseen(workspace):
    from conftest import set_yaml
    from transformers import AutoTokenizer

    from theseus_cli.data import _holdout, load_split, load_tokenized
    from theseus_cli.workspace.config import load_config

    set_yaml(workspace, {"data": {"selection": "holdout", "holdout_fraction": 0.25}})
    config = load_config(workspace)
    tok = AutoTokenizer.from_pretrained(config.model)
    sizes = [len(load_tokenized(config, "MRPC", tok, s)) for s in ("train", "selection", "dev")]
    assert sizes == [36, 12, 20]  # 48 training rows, 25% held out; dev untouched
    raw = load_split("MRPC", "train", config.glue_dir())
    held, kept = _holdout(raw, 0.25, True), _holdout(raw, 0.25, False)
    assert sorted(list(held["idx"]) + list(kept["idx"])) == sorted(raw["idx"])  # a partition
    assert list(held["idx"]) == list(_holdout(raw, 0.25, True)["idx"])  # the same every time
    out = flat(cli("finetune-teacher", "-w", workspace).output)
    assert "published MRPC/finetune-teacher/v1" in out
    # the output names the split it selects on: the held-out rows, not dev
    assert "36 train / 12 held-out examples" in out
    assert "finetune-teacher step 5/5: held-out f1" in out and ": dev " not in out
    assert "best held-out score at step" in out
    assert "training loss and held-out score over optimizer steps" in out  # the plot's axis
    evals = [json.loads(x) for x in (workspace / "artifacts/MRPC/finetune-teacher/v1/metrics.jsonl")
             .read_text().splitlines() if '"eval"' in x]
    assert evals and {e["split"] for e in evals} == {"held-out"}
    m = manifest(workspace, "finetune-teacher")
    assert m["config"]["data"]["selection"] == "holdout"
    assert (m["info"]["train_examples"], m["info"]["dev_examples"]) == (36, 12)


def test_variants_of_one_method_are_named_by_what_differs(methods):
    ws, _ = methods
    cli("truncate", "--learning-rate", "5e-4", "-w", ws)
    text = flat(cli("evaluate", "-w", ws).output)
    # the default, by hidden size: the value the run resolved, not null
    assert "truncate 2L, task loss (truncate.learning_rate=0.0001)" in text
    assert "truncate 2L, task loss (truncate.learning_rate=0.0005)" in text


# ------------------------------------- one module at a time (paper section 5.1)
def test_one_successor_module_at_a_time_in_the_teacher(trained, tmp_path):
    """``evaluate --successor replace --modules i``: the teacher with module i's layers
    replaced by successor module i (Table 5); all modules give the successor itself."""
    ws = copy_workspace(trained[0], tmp_path / "ws")
    whole = manifest(ws, "replace")["metrics"]  # its successor's dev score
    cli("evaluate", "-w", ws, "--successor", "replace", "--modules", "1")
    one = manifest(ws, "evaluate", "v2")
    assert one["metrics"]["successor_layers"] == 3  # 4 layers, module 1 (2 layers) -> 1
    assert one["info"]["method"].startswith("teacher with module 1 of ")
    cli("evaluate", "-w", ws, "--successor", "replace", "--modules", "2,1")
    both = manifest(ws, "evaluate", "v3")["metrics"]
    assert both["successor_layers"] == 2
    assert both["successor_score"] == pytest.approx(whole["score"], abs=1e-9)
    out = cli("evaluate", "-w", ws, "--successor", "replace", "--modules", "3", ok=False)
    assert out.exit_code == 2 and "--modules: 3: the successor has 2 modules; accepted: 1 to 2" \
        in flat(out.output)
    out = cli("evaluate", "-w", ws, "--modules", "first", ok=False)
    assert out.exit_code == 2 and "--modules first: give module numbers" in flat(out.output)
    out = cli("evaluate", "-w", ws, "--successor", "replace", ok=False)  # without --modules
    assert out.exit_code == 2 and "and replace with --modules" in flat(out.output)
