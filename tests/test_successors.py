"""Successor builders (paper sections 3.1 and 4.3): first-n and every-other, on tiny BERTs."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import cli, manifest
from transformers import BertConfig, BertForSequenceClassification

from theseus_builtin.successors.copy_layers import EveryOtherBuilder, FirstNBuilder
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import params as P


def tiny_layers(num_layers: int, seed: int = 0) -> torch.nn.ModuleList:
    """The encoder layers of a random BERT with ``num_layers`` layers (hidden 32)."""
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=num_layers,
                     num_attention_heads=4, intermediate_size=37, max_position_embeddings=32)
    return BertForSequenceClassification(cfg).bert.encoder.layer


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def build(cls, layers, n, **kw):
    return cls(cls.Params(**kw)).build(layers, n)


@pytest.mark.parametrize("cls, num_layers, n, picks", [
    (EveryOtherBuilder, 6, 3, [1, 3, 5]), (EveryOtherBuilder, 4, 2, [1, 3]),
    (EveryOtherBuilder, 4, 1, [3]), (EveryOtherBuilder, 6, 6, [0, 1, 2, 3, 4, 5]),
    (EveryOtherBuilder, 6, 2, [2, 5]), (FirstNBuilder, 6, 3, [0, 1, 2]),
    (FirstNBuilder, 4, 2, [0, 1]),
])
def test_builders_pick_layers(cls, num_layers, n, picks):
    layers = tiny_layers(num_layers)
    for prm in layers.parameters():  # a frozen source must still give trainable copies
        prm.requires_grad_(False)
    builder = cls(cls.Params())
    assert builder.source_layers(num_layers, n) == picks
    modules = builder.build(layers, n)
    assert len(modules) == n
    for i, j in enumerate(picks):
        assert type(modules[i]) is type(layers[j])  # stock HF layer class
        assert same_weights(modules[i], layers[j])
        others = [k for k in range(num_layers) if k != j]
        assert not any(same_weights(modules[i], layers[k]) for k in others)
        assert modules[i].attention.self.layer_idx == i  # renumbered to its successor index
    assert all(prm.requires_grad for prm in modules.parameters())


@pytest.mark.parametrize("cls", [FirstNBuilder, EveryOtherBuilder])
def test_copies_are_independent(cls):
    layers = tiny_layers(4)
    before = [{k: v.clone() for k, v in layer.state_dict().items()} for layer in layers]
    modules = build(cls, layers, 2)
    source_ptrs = {prm.data_ptr() for prm in layers.parameters()}
    assert not source_ptrs & {prm.data_ptr() for prm in modules.parameters()}
    with torch.no_grad():
        for prm in modules.parameters():
            prm.add_(1.0)
    for layer, state in zip(layers, before, strict=False):
        assert all(torch.equal(layer.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("cls", [FirstNBuilder, EveryOtherBuilder])
@pytest.mark.parametrize("n", [0, 3, 5, -1])
def test_bad_module_count_lists_divisors(cls, n):
    with pytest.raises(ConfigError) as exc:
        build(cls, tiny_layers(4), n)
    assert f"num_modules={n}" in str(exc.value) and "accepted: 1, 2, 4" in str(exc.value)
    assert cls.name in str(exc.value)


@pytest.mark.parametrize("cls", [FirstNBuilder, EveryOtherBuilder])
def test_init_from(cls):
    assert cls(cls.Params()).init_source == "teacher"  # the official code's default
    assert cls(cls.Params(init_from="pretrained")).init_source == "pretrained"
    with pytest.raises(ConfigError) as exc:
        cls.Params(init_from="random")
    assert "'random'" in str(exc.value) and "teacher, pretrained" in str(exc.value)
    with pytest.raises(ConfigError, match="'random'; accepted: teacher, pretrained"):
        P.build(cls.Params, {"init_from": "random"}, f"successor {cls.name}")
    with pytest.raises(ConfigError, match="unknown key 'foo'; accepted: init_from"):
        P.build(cls.Params, {"foo": 1}, f"successor {cls.name}")


def test_replace_anti_curriculum_every_other_through_cli(workspace):
    cli("replace", "--scheduler", "anti-curriculum", "--successor", "every-other", "-w", workspace)
    info = manifest(workspace, "replace")["info"]
    assert info["scheduler"]["name"] == "anti-curriculum"
    assert info["scheduler"]["params"]["b"] == 0.3
    # no slope set: p_d reaches 1 (p = 0) at the default 65% of the 6 steps, step 4
    assert info["scheduler"]["formula"] == ("p = 1 − min(1, 0.175·t + 0.3), p=0 from step 4 "
                                            "(65% of 6 steps)")
    assert info["successor_builder"] == {"name": "every-other", "params": {"init_from": "teacher"},
                                         "init_source": "teacher"}
    assert info["layers"] == 2 and info["predecessor_layers"] == 4
    log = [json.loads(line) for line in
           (workspace / "artifacts/MRPC/replace/v1/metrics.jsonl").read_text().splitlines()]
    train = [r for r in log if r["event"] == "train"]
    assert len(train) == info["optimizer_steps"]
    for r in train:  # a record's step counts steps done: p is that of 0-based step (step - 1)
        t = r["step"] - 1
        assert r["p"] == pytest.approx(0.0 if t >= 4 else 1.0 - (0.3 + 0.175 * t))

    cli("replace", "--successor", "every-other", "--successor-arg", "init_from=pretrained",
        "-w", workspace)
    info = manifest(workspace, "replace", "v2")["info"]
    assert info["successor_builder"]["init_source"] == "pretrained"
