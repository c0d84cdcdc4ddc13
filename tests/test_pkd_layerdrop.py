"""The paper's missing baselines as successor stages: BERT-PKD (Sun et al. 2019) and
LayerDrop (Fan et al. 2019, fine-tuning only, as the Theseus paper ran it), on every
model family, through the CLI, with their bad inputs refused before any work."""

from __future__ import annotations

import pytest
import torch
from conftest import cli, flat, manifest, set_yaml, versions
from tiny_models import MODEL_TYPES, batch, tiny_model

from theseus_builtin.stages.layerdrop import kept_layers
from theseus_cli.errors import ConfigError
from theseus_cli.model.loading import keep_bottom_layers, keep_layers
from theseus_cli.plugin.registry import family_of, kind_of
from theseus_cli.train import layerdrop
from theseus_cli.train.patient import PatientLoss, layer_map, patient_loss, pooled_states


def test_pkd_layer_maps_follow_sun_et_al():
    assert layer_map("skip", 12, 6) == [2, 4, 6, 8, 10]
    assert layer_map("last", 12, 6) == [7, 8, 9, 10, 11]
    assert layer_map("skip", 6, 3) == [2, 4] and layer_map("last", 6, 3) == [4, 5]
    assert layer_map("skip", 6, 1) == [] and layer_map("skip", 4, 2, given=[3]) == [3]
    with pytest.raises(ConfigError, match="divide the teacher's 6"):
        layer_map("skip", 6, 4)
    for bad in ([4, 2], [2], [2, 6], [0, 3]):
        with pytest.raises(ConfigError, match="give 2 increasing teacher layers from 1 to 5"):
            layer_map("skip", 6, 3, given=bad)


def test_patient_loss_is_the_mse_of_normalised_pooled_states():
    """Eq. 4 at the official code's scale, by hand; a decoder pools its last real token."""
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 8, generator=gen), torch.randn(2, 3, 8, generator=gen)
    want = ((s / s.norm(dim=-1, keepdim=True) - t / t.norm(dim=-1, keepdim=True)) ** 2).mean()
    assert torch.allclose(patient_loss(s, t), want)
    assert patient_loss(s, 3 * s).item() < 1e-12  # scale-free
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float).view(2, 4, 1)  # (B, T, H)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert pooled_states(hidden, mask, "first", False).flatten().tolist() == [0, 4]
    assert pooled_states(hidden, mask, "last", False).flatten().tolist() == [3, 5]
    assert pooled_states(hidden, mask, "first", True).flatten().tolist() == [0, 1, 2, 3, 4, 5]


class _Runtime:
    def autocast(self):
        import contextlib

        return contextlib.nullcontext()


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_pkd_loss_trains_the_student_on_every_family(model_type):
    """The student (bottom 2 of 4 layers) gets a finite loss with a gradient; its patient
    term is zero against itself as the teacher with the identity layer map."""
    from theseus_cli.data.glue import get_task

    teacher = tiny_model(model_type)
    layers = len(family_of(teacher).layers(teacher))
    student = keep_bottom_layers(teacher, 2).train()
    kind = kind_of(get_task("MRPC"))
    b = {**batch(), "labels": torch.tensor([0, 1, 0])}
    family = family_of(teacher)
    loss_fn = PatientLoss(teacher, kind, 0.7, 10.0, 500.0, layer_map("skip", layers, 2)
                          if layers % 2 == 0 else [1], family.pooled_token, _Runtime())
    out = student(**b, **loss_fn.model_kwargs)
    loss = loss_fn(out, b)
    assert torch.isfinite(loss) and loss.requires_grad
    if loss_fn.teacher_layers:  # the patient term is there: β = 0 gives less
        without = PatientLoss(teacher, kind, 0.7, 10.0, 0.0, loss_fn.teacher_layers,
                              family.pooled_token, _Runtime())(out, b)
        assert loss.item() > without.item()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    self_map = PatientLoss(student.eval(), kind, 0.0, 1.0, 1.0, [1], family.pooled_token,
                           _Runtime())
    with torch.no_grad():
        out = student(**b, output_hidden_states=True)
        task_only = PatientLoss(student, kind, 0.0, 1.0, 0.0, [1], family.pooled_token,
                                _Runtime())(out, b)
        assert torch.allclose(self_map(out, b), task_only, atol=1e-6)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_layerdrop_eval_is_the_pruned_model_on_every_family(model_type):
    """Slots at rate 0 in training mode are the model itself; in eval mode they skip what
    pruning drops, and the pruned stock model gives the same logits."""
    model = tiny_model(model_type)
    b = batch()
    with torch.no_grad():
        full = model(**b).logits
    n = len(family_of(model).layers(model))
    kept = kept_layers(n, "odd" if model_type == "modernbert" else "even")
    state = layerdrop.install(model, 0.0, kept, seed=0)
    model.train()
    for module in model.modules():  # no dropout: compare the function only
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    state.before_step(0)
    with torch.no_grad():
        assert torch.allclose(model(**b).logits, full, atol=1e-5)
        model.eval()
        slotted = model(**b).logits
        layerdrop.remove(model)
        pruned = keep_layers(model, kept).eval()
        assert len(family_of(pruned).layers(pruned)) == len(kept)
        assert torch.allclose(pruned(**b).logits, slotted, atol=1e-5)
        assert (slotted - full).abs().max() > 1e-5  # layers really were skipped


def test_layerdrop_draws_depend_only_on_seed_and_step():
    state = layerdrop.LayerDropState(12, [1, 3], 0.5, seed=7)
    draws = [state.before_step(t) and state.dropped.clone() for t in range(20)]
    again = layerdrop.LayerDropState(12, [1, 3], 0.5, seed=7)
    assert all(again.before_step(t) and again.dropped.equal(d) for t, d in enumerate(draws))
    share = torch.stack(draws).float().mean().item()
    assert 0.35 < share < 0.65  # about half the layers skipped per step
    assert kept_layers(6, "even") == [1, 3, 5] and kept_layers(5, "odd") == [0, 2, 4]


def test_pkd_and_layerdrop_stages_publish_successors_in_the_method_table(workspace):
    cli("finetune-teacher", "-w", workspace)
    out = flat(cli("pkd", "-w", workspace).output)
    info = manifest(workspace, "pkd")["info"]
    assert info["method"] == "pkd-skip 2L + KD α=0.7 β=500" and info["layers"] == 2
    assert info["distillation"]["teacher_layers"] == [2]
    assert info["recipe"].startswith("pkd-skip 2L, at most 1 epoch at lr")
    assert "patient β=500 on teacher layers 2" in info["recipe"] and "stopped at step" in out
    # no learning rate set: the teacher's rule by hidden size (the tiny model's < 768: 1e-4)
    assert manifest(workspace, "pkd")["params"]["learning_rate"] is None
    assert info["learning_rate"] == 1e-4 and "learning rate 0.0001 (by hidden size)" in out
    out = flat(cli("pkd", "--strategy", "last", "-w", workspace).output)
    assert manifest(workspace, "pkd", "v2")["info"]["distillation"]["teacher_layers"] == [3]
    out = flat(cli("layerdrop", "--learning-rate", "3e-5", "-w", workspace).output)
    info = manifest(workspace, "layerdrop")["info"]
    assert info["learning_rate"] == 3e-5 and "at lr 3e-05" in info["recipe"]
    assert "learning rate 3e-05" in out and "(by hidden size)" not in out
    assert info["layers"] == 2 and info["kept_layers"] == [2, 4]
    assert info["method"] == "layerdrop 2L, task loss"
    table = flat(cli("evaluate", "-w", workspace).output)  # every successor, one row each
    for label in ("layerdrop 2L, task loss", "pkd-skip 2L + KD α=0.7 β=500",
                  "pkd-last 2L + KD α=0.7 β=500", "then pruned to layers 2,4"):
        assert label in table, label


@pytest.mark.parametrize("args, expect", [
    (["layerdrop", "--rate", "1.0"], "--rate 1.0: a LayerDrop rate must lie in [0, 1)"),
    (["pkd", "--layer-map", "3,1"], "--layer-map 3,1: PKD layer map 3,1 does not fit"),
    (["pkd", "--layer-map", "two"], "PKD layer map 'two': give comma-separated"),
    (["pkd", "--successor-layers", "3"], "PKD-Skip needs the student's 3 layers to divide"),
])
def test_bad_pkd_and_layerdrop_settings_are_refused_before_any_work(workspace, args, expect):
    set_yaml(workspace, {"finetune-teacher": {"epochs": 1}})
    result = cli(*args, "-w", workspace, ok=False)
    assert result.exit_code != 0 and expect in flat(result.output)
    assert versions(workspace, "finetune-teacher") == versions(workspace, args[0]) == []
