"""Successor types beyond copies (narrow-ffn, low-rank, head-pruned, narrow-hidden) on
a tiny model of every family: the same checks as the copies (tests/test_families.py),
plus their size and their export."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import cli, make_workspace, manifest, set_yaml
from tiny_models import MODEL_TYPES, batch, tiny_model
from transformers import AutoModelForSequenceClassification

from theseus_builtin.successors.narrow_hidden import NarrowHiddenBuilder
from theseus_builtin.successors.shrinking import (
    HeadPrunedBuilder,
    LowRankBuilder,
    NarrowFfnBuilder,
)
from theseus_cli.errors import ConfigError, PluginError
from theseus_cli.method.parameters import count_parameters, trainable_parameters
from theseus_cli.method.replacing import (
    assemble_successor,
    check_successor_forward,
    make_hybrid,
    router_of,
)
from theseus_cli.model import loading as models
from theseus_cli.plugin import Calibration
from theseus_cli.plugin.registry import family_of

TYPES = {"narrow-ffn": (NarrowFfnBuilder, {"ffn_fraction": 0.5}),
         "low-rank": (LowRankBuilder, {"rank": 4}),
         "head-pruned": (HeadPrunedBuilder, {"head_fraction": 0.5}),
         "narrow-hidden": (NarrowHiddenBuilder, {"hidden_fraction": 0.5})}
LABELS = torch.tensor([0, 1, 1])


def hybrid_of(model_type: str, kind: str, every_layer: bool = False, model=None,
              labels=LABELS):
    """(hybrid, untouched predecessor, builder); n = L/2 modules (L with ``every_layer``)."""
    cls, params = TYPES[kind]
    model = tiny_model(model_type) if model is None else model
    original = copy.deepcopy(model)
    family = family_of(model)
    builder = cls(cls.Params(**params))
    builder.family = family
    if builder.calibration_batches():
        builder.calibration = Calibration(model, [{**batch(seed=7), "labels": labels}])
    layers = family.layers(model)
    n = len(layers) if every_layer else len(layers) // 2
    modules = builder.build(layers, n)
    return make_hybrid(model, modules, n, family, builder), original, builder


def logits(model, b):
    with torch.no_grad():
        return model(**b).logits


NEEDS_HEADS = ("head-pruned", "narrow-hidden")
CASES = [(t, k) for k in sorted(TYPES) for t in MODEL_TYPES]  # every type on every family


@pytest.mark.parametrize("model_type,kind", CASES)
def test_paths_training_and_export(model_type, kind, tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    hybrid, original, builder = hybrid_of(model_type, kind)
    router, b = router_of(hybrid), batch()
    check_successor_forward(hybrid, kind)
    router.eval_path = "predecessor"
    assert torch.equal(logits(hybrid, b), logits(original, b))  # p = 0: exactly
    router.eval_path = "successor"
    successor = assemble_successor(hybrid).eval()
    expected = logits(successor, b)
    torch.testing.assert_close(logits(hybrid, b), expected, rtol=0, atol=1e-6)  # p = 1
    # smaller than copies of the same layers
    copies = count_parameters(original)["layers"] * router.num_modules // len(router.predecessor_layers)
    assert count_parameters(successor)["layers"] < copies or model_type == "albert"
    assert count_parameters(hybrid)["successor_path"] == count_parameters(successor)["total"]
    # export: stock where the config says it all (narrow-ffn), the theseus loader otherwise
    models.save(successor, AutoTokenizer.from_pretrained(tiny_model_dir), tmp_path)
    restructured = (tmp_path / models.SUCCESSOR_FILE).is_file()
    assert restructured == (kind != "narrow-ffn")
    loaded = (models.load_saved(tmp_path)[0] if restructured
              else AutoModelForSequenceClassification.from_pretrained(tmp_path)).eval()
    torch.testing.assert_close(logits(loaded, b), expected, rtol=0, atol=1e-5)
    # one optimizer step: successor modules change, everything else stays
    frozen = {n: p.detach().clone() for n, p in hybrid.named_parameters() if not p.requires_grad}
    before = copy.deepcopy(router.successor_modules.state_dict())
    hybrid.train()
    router.set_replacement_mask(torch.ones(router.num_modules, dtype=torch.bool))
    opt = torch.optim.AdamW(trainable_parameters(hybrid), lr=1e-2)
    hybrid(**b, labels=LABELS).loss.backward()
    opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in hybrid.named_parameters() if n in frozen)
    after = router.successor_modules.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_every_type_on_a_token_classifier(kind, tmp_path, tiny_model_dir):
    """A tagger's successor of every type: p = 0 / p = 1 exact, saved and read back (the
    theseus loader picks AutoModelForTokenClassification from the saved architectures)."""
    from transformers import AutoTokenizer

    tagger = tiny_model("bert", auto_class="AutoModelForTokenClassification")
    tags = torch.zeros(3, 12, dtype=torch.long)  # (B, L) tag ids, first rows tagged 1
    tags[0, :4] = 1
    hybrid, original, _ = hybrid_of("bert", kind, model=tagger, labels=tags)
    router, b = router_of(hybrid), batch()
    router.eval_path = "predecessor"
    assert torch.equal(logits(hybrid, b), logits(original, b))
    router.eval_path = "successor"
    successor = assemble_successor(hybrid).eval()
    expected = logits(successor, b)
    assert expected.shape == (3, 12, 2)
    torch.testing.assert_close(logits(hybrid, b), expected, rtol=0, atol=1e-6)
    models.save(successor, AutoTokenizer.from_pretrained(tiny_model_dir), tmp_path)
    loaded = models.load_saved(tmp_path)[0].eval()
    assert type(loaded).__name__ == "BertForTokenClassification"
    torch.testing.assert_close(logits(loaded, b), expected, rtol=0, atol=1e-5)


def test_narrow_ffn_keeps_the_most_important_neurons():
    hybrid, original, _ = hybrid_of("bert", "narrow-ffn")
    module = router_of(hybrid).successor_modules[0]
    assert module.intermediate.dense.out_features == round(0.5 * 37)
    source = original.bert.encoder.layer[0]  # first-n: module 0 copies layer 0
    w_in, w_out = source.intermediate.dense.weight, source.output.dense.weight
    score = w_in.norm(dim=1) * w_out.norm(dim=0)
    kept = torch.topk(score, 18).indices.sort().values
    assert torch.equal(module.intermediate.dense.weight, w_in[kept])
    assert torch.equal(module.output.dense.weight, w_out[:, kept])
    assert assemble_successor(hybrid).config.intermediate_size == 18


def test_low_rank_is_the_truncated_svd():
    torch.manual_seed(0)
    from theseus_builtin.successors.shrink import factorise, svd_rank

    linear = torch.nn.Linear(20, 12)
    low = factorise(linear, 5)
    u, s, vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    best = u[:, :5] @ torch.diag(s[:5]) @ vh[:5]
    torch.testing.assert_close(low.second.weight @ low.first.weight, best, rtol=0, atol=1e-5)
    assert svd_rank(linear.weight, 1.0) == 12 and svd_rank(linear.weight, 1e-9) == 1
    builder = LowRankBuilder(LowRankBuilder.Params(energy=0.9))
    assert 1 <= builder._rank(linear.weight) <= 12


def test_bad_settings_and_modules_are_rejected_before_training():
    with pytest.raises(ConfigError, match="ffn_fraction=0"):
        NarrowFfnBuilder.Params(ffn_fraction=0.0)
    with pytest.raises(ConfigError, match="layers='last-n'.*first-n, every-other"):
        LowRankBuilder.Params(layers="last-n")
    model = tiny_model("bert")
    family = family_of(model)
    builder = NarrowFfnBuilder(NarrowFfnBuilder.Params())
    builder.family = type("NoFfn", (), {"name": "mystery", "ffn": None})()
    with pytest.raises(ConfigError, match="family 'mystery' does not say where"):
        builder.build(family.layers(model), 2)
    bad = torch.nn.ModuleList([torch.nn.Linear(7, 7), torch.nn.Linear(7, 7)])
    hybrid = make_hybrid(model, bad, 2, family)
    with pytest.raises(PluginError, match="builder 'broken'.*dummy batch"):
        check_successor_forward(hybrid, "broken")


def test_head_pruned_keeps_the_most_important_heads():
    from theseus_builtin.successors import shrink

    hybrid, original, builder = hybrid_of("bert", "head-pruned")
    block = builder.family.attention
    scores = shrink.head_importance(original, builder.family.layers(original), block,
                                    [{**batch(seed=7), "labels": LABELS}])
    assert len(scores) == 4 and all(s.shape == (4,) and s.sum() > 0 for s in scores)
    module = router_of(hybrid).successor_modules[1]  # first-n: copies layer 1
    kept = torch.topk(scores[1], 2).indices.sort().values
    rows = (kept[:, None] * 8 + torch.arange(8)).flatten()  # head_dim 32 / 4 = 8
    source = original.bert.encoder.layer[1].attention
    assert torch.equal(module.attention.self.query.weight, source.self.query.weight[rows])
    assert torch.equal(module.attention.output.dense.weight, source.output.dense.weight[:, rows])
    assert module.attention.self.num_attention_heads == 2
    assert builder.layer_spec(module) == {"heads": 2, "kv_heads": 2}


def test_head_pruned_keeps_whole_groups_with_grouped_query_attention():
    hybrid, _, builder = hybrid_of("llama", "head-pruned")  # 4 query heads, 2 kv heads
    for module in router_of(hybrid).successor_modules:
        assert builder.layer_spec(module) == {"heads": 2, "kv_heads": 1}


@pytest.mark.parametrize("kind", NEEDS_HEADS)
def test_head_types_name_the_families_they_cannot_shrink(kind, monkeypatch):
    from theseus_builtin.families.builtin import Bert

    monkeypatch.setattr(Bert, "attention", None)  # a family that does not say
    with pytest.raises(ConfigError, match=f"{kind}: model family 'bert' does not say where its "
                                          "attention projections are"):
        hybrid_of("bert", kind)


@pytest.mark.parametrize("kind", NEEDS_HEADS)
def test_deberta_relative_position_projections_follow_the_heads(kind):
    from tiny_models import HID, VOCAB
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    torch.manual_seed(0)
    config = DebertaV2Config(vocab_size=VOCAB, num_hidden_layers=4, max_position_embeddings=128,
                             relative_attention=True, position_buckets=16,
                             pos_att_type=["p2c", "c2p"], share_att_key=False,
                             position_biased_input=False, **HID)
    model = DebertaV2ForSequenceClassification(config).eval()
    hybrid, original, _ = hybrid_of("deberta-v2", kind, model=model)
    router, b = router_of(hybrid), batch()
    module = router.successor_modules[0]
    attention = (module.layer if kind == "narrow-hidden" else module).attention.self
    assert attention.pos_key_proj.out_features == attention.query_proj.out_features == 16
    if kind == "narrow-hidden":  # reads the relative-position embeddings in the narrow width
        assert attention.pos_key_proj.in_features == 16
    router.eval_path = "successor"
    torch.testing.assert_close(logits(hybrid, b), logits(assemble_successor(hybrid), b),
                               rtol=0, atol=1e-6)


def test_narrow_hidden_projects_onto_the_principal_directions():
    from theseus_builtin.successors import narrowing

    hybrid, original, builder = hybrid_of("bert", "narrow-hidden")
    module = router_of(hybrid).successor_modules[1]  # first-n: from layer 1
    # 2 of 4 heads of size 8: width 16 of 32, feed-forward 18 of 37 neurons
    assert builder.layer_spec(module) == {"width": 16, "heads": 2, "kv_heads": 2, "neurons": 18}
    basis = narrowing.stream_basis(original, original.bert.encoder.layer[1],
                                   [{**batch(seed=7), "labels": LABELS}], 16)
    torch.testing.assert_close(basis @ basis.T, torch.eye(16), rtol=0, atol=1e-5)  # orthonormal
    torch.testing.assert_close(module.down.weight, basis)
    torch.testing.assert_close(module.up.weight, basis.T)
    source = original.bert.encoder.layer[1].intermediate.dense  # reads the stream: W Pᵀ
    neurons = module.layer.intermediate.dense.out_features
    assert module.layer.intermediate.dense.weight.shape == (neurons, 16)
    assert module.layer.attention.output.LayerNorm.normalized_shape == (16,)
    # the full width with every head and neuron is the layer itself, in a rotated basis
    full = NarrowHiddenBuilder(NarrowHiddenBuilder.Params(hidden_fraction=1.0))
    full.family = builder.family
    full.calibration = Calibration(original, [{**batch(seed=7), "labels": LABELS}])
    whole = full.build(builder.family.layers(original), 4)[1]
    x, mask = torch.randn(3, 5, 32), None
    with torch.no_grad():
        w = whole.layer.intermediate.dense.weight @ whole.down.weight  # (37, 32)
        torch.testing.assert_close(w, source.weight, rtol=0, atol=1e-4)
        assert whole(x, mask).shape == x.shape


def test_narrow_hidden_rejects_bad_fractions():
    with pytest.raises(ConfigError, match="hidden_fraction=1.5"):
        NarrowHiddenBuilder.Params(hidden_fraction=1.5)


@pytest.mark.parametrize("kind,args", [("narrow-ffn", ["--successor-arg", "ffn_fraction=0.5"]),
                                       ("head-pruned", ["--successor-arg", "head_fraction=0.5"]),
                                       ("narrow-hidden", ["--successor-arg", "hidden_fraction=0.5"]),
                                       ("low-rank", ["--successor-layers", "4",
                                                     "--successor-arg", "rank=4"])])
def test_cli_pipeline_with_each_type(kind, args, tmp_path, tiny_model_dir, glue_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue_dir)
    set_yaml(ws, {"export": {"output": str(tmp_path / "out")}})
    cli("replace", "-w", ws, "--successor", kind, *args)
    for command in ("finetune-successor", "evaluate"):
        cli(command, "-w", ws)
    # every successor type has a deployable form: ONNX (and int8) with parity checked
    cli("export", "-w", ws, "--format", "hf,onnx,onnx-int8", "--int8-max-drop", "100")
    assert manifest(ws, "export")["metrics"]["onnx_logits_max_abs_diff"] <= 1e-4
    m = manifest(ws, "evaluate")["metrics"]
    assert m["successor_parameters"] < m["teacher_parameters"] and m["speedup"] > 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert ("theseus_cli.model.loading import load_saved" in card) == (kind != "narrow-ffn")
    model, _ = models.load_saved(tmp_path / "out" / "model")
    assert (tmp_path / "out" / "onnx-int8" / "model.onnx").is_file()
    assert models.num_layers(model) == manifest(ws, "replace")["info"]["modules"]


def test_mpnet_bias_rows_follow_heads_pruned_twice():
    """MPNet's per-head relative position bias keeps the rows of the kept heads, as
    original indices, also when an already pruned layer is pruned again."""
    from theseus_builtin.successors import shrink

    model = tiny_model("mpnet").eval()
    family = family_of(model)
    block = family.attention
    heads, _, _ = block.head_counts(family.layers(model)[0])
    assert heads >= 4
    once, twice = copy.deepcopy(model), copy.deepcopy(model)
    shrink.keep_heads(family.layers(once)[0], block, torch.tensor([1, 3]), torch.tensor([1, 3]))
    layer = family.layers(twice)[0]
    shrink.keep_heads(layer, block, torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]))
    shrink.keep_heads(layer, block, torch.tensor([0, 2]), torch.tensor([0, 2]))
    assert shrink.bias_heads(layer, block) == [1, 3]
    b = batch(seed=3)
    torch.testing.assert_close(logits(twice, b), logits(once, b))
    assert not torch.allclose(logits(once, b), logits(model, b))


@pytest.mark.parametrize("kind", ["head-pruned", "narrow-hidden"])
def test_shrunk_attention_is_fused_for_onnx_runtime_with_parity(kind, tmp_path):
    """Export fuses the attention of successors with fewer heads or a narrower hidden
    size (the head count is read off the layers, not the config) and parity holds."""
    import numpy as np

    from theseus_builtin.stages.export_onnx import attention_shape
    from theseus_cli.deploy import onnx as deploy

    hybrid, _, _ = hybrid_of("bert", kind)
    successor = assemble_successor(hybrid).eval()
    heads, width = attention_shape(successor)
    assert heads < successor.config.num_attention_heads or width < successor.config.hidden_size
    names = ["input_ids", "attention_mask"]
    deploy.export_onnx(successor, batch(seed=0), names, tmp_path / "m.onnx")
    fused = deploy.optimize_graph(tmp_path / "m.onnx", tmp_path / "f.onnx", heads, width)
    assert fused.get("Attention") == models.num_layers(successor), fused
    other = batch(seed=5)
    got = deploy.run_session(deploy.session(tmp_path / "f.onnx"), other)
    np.testing.assert_allclose(got, logits(successor, {k: other[k] for k in names}).numpy(),
                               atol=1e-4, rtol=0)
