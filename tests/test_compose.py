"""Successor types composed (``--successor compose``): head pruning, a narrow feed-forward
block and low-rank maps on every module, on every family; the same logits after saving
and loading; combinations that cannot be made refused by name before any work."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import cli, flat, manifest, versions
from test_families import logits
from tiny_models import MODEL_TYPES, batch, tiny_model

from theseus_builtin.successors.compose import ComposedBuilder, parse_types
from theseus_builtin.successors.shrink import LowRankLinear
from theseus_cli.errors import ConfigError
from theseus_cli.method.parameters import count_parameters
from theseus_cli.method.replacing import assemble_successor, make_hybrid, router_of
from theseus_cli.model import loading as models
from theseus_cli.plugin import Calibration
from theseus_cli.plugin.registry import family_of


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_composed_successor_on_every_family(model_type, tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    model = tiny_model(model_type)
    original = copy.deepcopy(model)
    family = family_of(model)
    builder = ComposedBuilder(ComposedBuilder.Params(rank=4))
    builder.family = family
    builder.calibration = Calibration(model, [{**batch(seed=7), "labels": torch.tensor([0, 1, 1])}])
    layers = family.layers(model)
    n = len(layers) // 2
    hybrid = make_hybrid(model, builder.build(layers, n), n, family, builder)
    router, b = router_of(hybrid), batch()
    router.eval_path = "predecessor"
    assert torch.equal(logits(hybrid, b), logits(original, b))  # p = 0: exactly
    router.eval_path = "successor"
    successor = assemble_successor(hybrid).eval()
    expected = logits(successor, b)
    torch.testing.assert_close(logits(hybrid, b), expected, rtol=0, atol=1e-6)
    spec = successor.theseus_successor["specs"][0]
    assert set(spec) == {"head-pruned", "low-rank"}  # narrow-ffn is in the config
    assert any(isinstance(m, LowRankLinear) for m in family.layers(successor)[0].modules())
    one = count_parameters(original)["layers"] // len(layers)
    assert count_parameters(successor)["layers"] < n * one
    models.save(successor, AutoTokenizer.from_pretrained(tiny_model_dir), tmp_path)
    loaded, _ = models.load_saved(tmp_path)
    torch.testing.assert_close(logits(loaded.eval(), b), expected, rtol=0, atol=1e-5)


def test_types_apply_in_one_order_and_bad_combinations_are_named():
    assert parse_types("low-rank, head-pruned") == ["head-pruned", "low-rank"]
    with pytest.raises(ConfigError, match="narrow-hidden cannot be combined"):
        parse_types("narrow-hidden,low-rank")
    with pytest.raises(ConfigError, match="shared cannot be combined"):
        parse_types("shared,narrow-ffn")
    with pytest.raises(ConfigError, match="unknown type 'pruned'"):
        parse_types("pruned")
    with pytest.raises(ConfigError, match="at most once"):
        parse_types("low-rank,low-rank")


def test_the_rosita_recipe_through_the_cli(workspace):
    """compose + a compressed embedding + KD, then the vocabulary trimmed: every piece of
    the smaller successor in one lineage, exported to ONNX."""
    cli("finetune-teacher", "-w", workspace)
    cli("replace", "--successor", "compose", "--successor-arg", "rank=4", "--embedding-rank",
        "8", "--distill-weight", "0.5", "-w", workspace)
    cli("finetune-successor", "-w", workspace)
    m = manifest(workspace, "finetune-successor")
    assert m["info"]["method"].startswith("theseus 2L, compose rank=4, emb r=8 + KD α=0.5")
    cli("trim-vocab", "-w", workspace)
    teacher = manifest(workspace, "finetune-teacher")["info"]["parameters"]["total"]
    trimmed = manifest(workspace, "trim-vocab")["info"]["parameters"]["total"]
    assert trimmed * 2 < teacher
    out = flat(cli("export", "--successor", "trim-vocab", "--format", "hf,onnx", "-w",
                   workspace).output)
    assert "exported: hf" in out


def test_a_combination_that_cannot_be_made_is_refused_before_any_work(workspace):
    result = cli("replace", "--successor", "compose", "--successor-arg",
                 "types=narrow-hidden,low-rank", "-w", workspace, ok=False)
    assert result.exit_code != 0 and "narrow-hidden cannot be combined" in flat(result.output)
    assert versions(workspace, "finetune-teacher") == versions(workspace, "replace") == []


def test_sweep_searches_the_combination_and_its_fractions(workspace):
    """``theseus sweep replace`` over which types compose (``+`` inside one value) and a
    fraction: every trial a replace version with its own successor."""
    cli("finetune-teacher", "-w", workspace)
    out = flat(cli("sweep", "replace", "--param", "successor=compose",
                   "--param", "successor.types=narrow-ffn,narrow-ffn+low-rank",
                   "--param", "successor.ffn_fraction=0.25,0.5", "-w", workspace).output)
    assert "4/4 trials finished" in out
    runs = [manifest(workspace, "replace", v)["info"]["successor_builder"]
            for v in versions(workspace, "replace")]
    assert {r["name"] for r in runs} == {"compose"}
    assert {(r["params"]["types"], r["params"]["ffn_fraction"]) for r in runs} == {
        (t, f) for t in ("narrow-ffn", "narrow-ffn+low-rank") for f in (0.25, 0.5)}
