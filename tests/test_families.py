"""Model families (theseus_cli.plugin.family, plugins/theseus_builtin/families.py): module
replacing on a tiny random model of every built-in family, and the CLI pipeline on each."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import MODEL_TYPES, batch, tiny_model
from transformers import AutoModelForSequenceClassification

from theseus_builtin.successors.copy_layers import EveryOtherBuilder, FirstNBuilder
from theseus_cli.errors import ConfigError, ModelSourceError
from theseus_cli.method.parameters import count_parameters, trainable_parameters
from theseus_cli.method.replacing import assemble_successor, make_hybrid, router_of
from theseus_cli.model import loading as models
from theseus_cli.plugin.registry import family_for, family_of


def hybrid_of(model_type: str, builder=FirstNBuilder, perturb: bool = True,
              auto_class: str = "AutoModelForSequenceClassification"):
    """(hybrid with n = L/2 modules, untouched copy of the predecessor)."""
    model = tiny_model(model_type, auto_class=auto_class)
    original = copy.deepcopy(model)
    family = family_of(model)
    layers = family.layers(model)
    modules = builder(builder.Params()).build(layers, len(layers) // 2)
    if perturb:  # successor != predecessor, so the paths differ
        with torch.no_grad():
            for prm in modules.parameters():
                prm.add_(0.05 * torch.randn_like(prm))
    return make_hybrid(model, modules, len(layers) // 2, family), original


def logits(model, b):
    with torch.no_grad():
        return model(**b).logits


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_p0_is_the_predecessor_and_p1_the_successor(model_type):
    hybrid, original = hybrid_of(model_type)
    router, b = router_of(hybrid), batch()
    router.eval_path = "predecessor"
    assert torch.equal(logits(hybrid, b), logits(original, b))  # p = 0: exactly
    router.eval_path = "successor"
    successor = assemble_successor(hybrid).eval()
    assert models.num_layers(successor) == router.num_modules
    assert type(successor) is type(original)
    expected = logits(successor, b)
    torch.testing.assert_close(logits(hybrid, b), expected, rtol=0, atol=1e-6)  # p = 1
    hybrid.train()  # training mode, every module replaced, dropout off: the same model
    for m in hybrid.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    router.set_replacement_mask(torch.ones(router.num_modules, dtype=torch.bool))
    hybrid.config.attention_dropout = 0.0
    if model_type not in ("modernbert",):  # its attention dropout reads the config at call time
        torch.testing.assert_close(logits(hybrid, b), expected, rtol=0, atol=1e-6)
    assert not torch.allclose(expected, logits(original, b))  # the perturbation took effect


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_one_step_trains_only_the_successor(model_type):
    hybrid, _ = hybrid_of(model_type)
    router = router_of(hybrid)
    trainable = trainable_parameters(hybrid)
    assert {id(p) for p in trainable} == {id(p) for p in router.successor_modules.parameters()}
    frozen = {n: p.detach().clone() for n, p in hybrid.named_parameters() if not p.requires_grad}
    before = copy.deepcopy(router.successor_modules.state_dict())
    hybrid.train()
    mask = torch.zeros(router.num_modules, dtype=torch.bool)
    mask[0] = True  # successor module 0 below frozen predecessor modules
    router.set_replacement_mask(mask)
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    out = hybrid(**batch(), labels=torch.tensor([0, 1, 1]))
    out.loss.backward()
    opt.step()
    for name, p in hybrid.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    after = router.successor_modules.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("0."))
    assert all(torch.equal(after[k], before[k]) for k in before if not k.startswith("0."))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_successor_exports_as_a_stock_model(model_type, tmp_path):
    hybrid, _ = hybrid_of(model_type, builder=EveryOtherBuilder)
    successor = assemble_successor(hybrid).eval()
    successor.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(successor)
    b = batch(seed=3)  # loaded with the default attention kernel (sdpa), built with eager
    torch.testing.assert_close(logits(loaded, b), logits(successor, b), rtol=0, atol=1e-6)
    assert count_parameters(hybrid)["successor_path"] == count_parameters(loaded)["total"]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_token_classification_heads_replace_and_export_alike(model_type, tmp_path):
    """A tagger (``*ForTokenClassification``, logits (B, L, C)) of every family: p = 0 is
    the predecessor, p = 1 the assembled successor, which stock transformers reloads."""
    from transformers import AutoModelForTokenClassification

    hybrid, original = hybrid_of(model_type, auto_class="AutoModelForTokenClassification")
    router, b = router_of(hybrid), batch()
    router.eval_path = "predecessor"
    assert logits(hybrid, b).shape == (3, 12, 2)
    assert torch.equal(logits(hybrid, b), logits(original, b))
    router.eval_path = "successor"
    successor = assemble_successor(hybrid).eval()
    torch.testing.assert_close(logits(hybrid, b), logits(successor, b), rtol=0, atol=1e-6)
    successor.save_pretrained(tmp_path)
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(successor) and models.saved_auto_class(
        loaded.config) is AutoModelForTokenClassification
    torch.testing.assert_close(logits(loaded, b), logits(successor, b), rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_truncation_keeps_the_bottom_layers(model_type, tmp_path):
    model = tiny_model(model_type)
    family = family_of(model)
    cut = models.keep_bottom_layers(model, 2).eval()
    assert models.num_layers(cut) == 2 == len(family.layers(cut))
    for a, b in zip(family.layers(cut), family.layers(model)[:2], strict=False):
        assert a is not b and all(torch.equal(x, y) for x, y in
                                  zip(a.state_dict().values(), b.state_dict().values(), strict=False))
    cut.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(loaded, batch()), logits(cut, batch()), rtol=0, atol=1e-6)


def test_albert_successor_modules_are_unshared_copies():
    hybrid, original = hybrid_of("albert")
    layer = sum(p.numel() for p in family_of(original).layers(original)[0].parameters())
    successor = assemble_successor(hybrid)
    assert successor.config.num_hidden_groups == successor.config.num_hidden_layers == 2
    assert count_parameters(successor)["layers"] == 2 * layer  # one unshared group per layer
    assert count_parameters(original)["layers"] == layer  # one group shared by 4 layers


def test_modernbert_keeps_each_modules_attention_type():
    hybrid, original = hybrid_of("modernbert", builder=FirstNBuilder)  # layers 0, 1, 2 of 6
    assert original.config.layer_types[:3] == ["full_attention", "sliding_attention",
                                               "sliding_attention"]
    successor = assemble_successor(hybrid)
    assert successor.config.layer_types == original.config.layer_types[:3]


def test_deberta_keeps_relative_positions_and_its_convolution():
    hybrid, original = hybrid_of("deberta-v2")
    successor = assemble_successor(hybrid)
    for name in ("rel_embeddings.weight", "conv.conv.weight"):
        got = dict(successor.deberta.encoder.named_parameters())[name]
        assert torch.equal(got, dict(original.deberta.encoder.named_parameters())[name]), name


def test_unknown_family_and_mixed_layer_types_are_rejected():
    with pytest.raises(ModelSourceError) as e:
        family_for("roformer", "my-model")
    text = str(e.value)
    assert "model type 'roformer' (my-model)" in text and "bert: bert" in text
    assert "llama: llama, qwen2, mistral" in text and "theseus.families" in text
    from transformers import Qwen2Config

    mixed = Qwen2Config(num_hidden_layers=2, use_sliding_window=True, max_window_layers=1)
    with pytest.raises(ConfigError, match="mixes layer types"):
        family_for("qwen2").check(mixed, 1)
