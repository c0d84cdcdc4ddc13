"""Module replacing (theseus_cli.method.replacing) on a tiny random BERT."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from theseus_builtin.successors.copy_layers import FirstNBuilder
from theseus_cli.errors import ConfigError, ExportError, ModelSourceError
from theseus_cli.method.grouping import group_layers
from theseus_cli.method.masks import draw_replacement_mask
from theseus_cli.method.parameters import count_parameters, trainable_parameters
from theseus_cli.method.replacing import (
    ModuleRouter,
    assemble_successor,
    make_hybrid,
    router_of,
)

N = 2  # successor modules; 4 predecessor layers -> 2 layers per module


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64, num_labels=2,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(cfg)


def batch(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 99, (3, 10), generator=g)  # (batch, seq_len)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padding in one row, exercises the attention mask path
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1])}


def hybrid_and_original(perturb: bool = True):
    """(hybrid, untouched copy of the predecessor); successor != predecessor if perturb."""
    pred = tiny_bert()
    original = copy.deepcopy(pred).eval()
    scc = FirstNBuilder(FirstNBuilder.Params()).build(pred.bert.encoder.layer, N)
    if perturb:
        with torch.no_grad():
            for prm in scc.parameters():
                prm.add_(0.05 * torch.randn_like(prm))
    return make_hybrid(pred, scc, N), original


def logits(model, b, **kw):
    return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], **kw).logits


# ------------------------------------------------------------------ grouping


def test_group_layers():
    assert group_layers(12, 6) == [range(0, 2), range(2, 4), range(4, 6), range(6, 8),
                                   range(8, 10), range(10, 12)]
    assert group_layers(4, 1) == [range(0, 4)]
    assert group_layers(4, 4) == [range(i, i + 1) for i in range(4)]


@pytest.mark.parametrize("n", [0, 5, 7, 13, -1])
def test_group_layers_errors_list_divisors(n):
    with pytest.raises(ConfigError) as exc:
        group_layers(12, n)
    assert str(n) in str(exc.value)
    assert "1, 2, 3, 4, 6, 12" in str(exc.value)


def test_make_hybrid_rejects_bad_module_count_and_model():
    pred = tiny_bert()
    scc = FirstNBuilder(FirstNBuilder.Params()).build(pred.bert.encoder.layer, N)
    with pytest.raises(ConfigError, match="1, 2, 4"):
        make_hybrid(pred, scc, 3)
    with pytest.raises(ModelSourceError, match="does not support model type 'Linear'"):
        make_hybrid(torch.nn.Linear(2, 2), scc, N)


# --------------------------------------------------------------------- masks


def test_mask_deterministic_and_varies():
    a = draw_replacement_mask(0.5, 16, seed=42, step=7)
    assert a.dtype == torch.bool and a.shape == (16,)
    assert torch.equal(a, draw_replacement_mask(0.5, 16, seed=42, step=7))
    others = [draw_replacement_mask(0.5, 16, seed=42, step=s) for s in range(8, 12)]
    assert any(not torch.equal(a, o) for o in others)
    assert not torch.equal(a, draw_replacement_mask(0.5, 16, seed=43, step=7))


def test_mask_extremes_and_mean():
    assert not draw_replacement_mask(0.0, 6, 0, 3).any()
    assert draw_replacement_mask(1.0, 6, 0, 3).all()
    for p in (0.3, 0.7):
        draws = torch.stack([draw_replacement_mask(p, N, 123, t) for t in range(2000)])  # (2000, N)
        assert abs(draws.float().mean().item() - p) < 0.05
    with pytest.raises(ConfigError, match="1.5"):
        draw_replacement_mask(1.5, N, 0, 0)


# -------------------------------------------------------------------- forward


def test_p0_equals_predecessor():
    hybrid, original = hybrid_and_original()
    b = batch()
    hybrid.train()
    router_of(hybrid).set_replacement_mask(torch.zeros(N, dtype=torch.bool))
    with torch.no_grad():
        assert torch.equal(logits(hybrid, b), logits(original, b))
    hybrid.eval()
    router_of(hybrid).eval_path = "predecessor"
    with torch.no_grad():
        assert torch.equal(logits(hybrid, b), logits(original, b))


def test_p1_and_eval_equal_assembled_successor():
    hybrid, original = hybrid_and_original()
    b = batch()
    student = assemble_successor(hybrid).eval()
    assert student.config.num_hidden_layers == N and type(student) is type(original)
    assert len(student.bert.encoder.layer) == N
    hybrid.train()
    router_of(hybrid).set_replacement_mask(torch.ones(N, dtype=torch.bool))
    with torch.no_grad():
        expected = logits(student, b)
        assert torch.equal(logits(hybrid, b), expected)
        hybrid.eval()
        assert torch.equal(logits(hybrid, b), expected)
        assert not torch.equal(expected, logits(original, b))  # perturbation took effect


def test_training_without_mask_raises():
    hybrid, _ = hybrid_and_original()
    hybrid.train()
    with pytest.raises(RuntimeError, match="set_replacement_mask"):
        logits(hybrid, batch())


def test_only_chosen_branch_runs():
    hybrid, _ = hybrid_and_original()
    enc: ModuleRouter = router_of(hybrid)
    calls: list[str] = []
    for name, mods in (("p", enc.predecessor_layers), ("s", enc.successor_modules)):
        for i, m in enumerate(mods):
            m.register_forward_hook(lambda *_, tag=f"{name}{i}": calls.append(tag))
    hybrid.train()
    enc.set_replacement_mask(torch.tensor([True, False]))
    logits(hybrid, batch())
    assert calls == ["s0", "p2", "p3"]


def test_one_step_mixed_mask_gradients():
    hybrid, _ = hybrid_and_original()
    enc: ModuleRouter = router_of(hybrid)
    trainable = trainable_parameters(hybrid)
    assert {id(p) for p in trainable} == {id(p) for p in enc.successor_modules.parameters()}
    frozen = {n: p.detach().clone() for n, p in hybrid.named_parameters() if not p.requires_grad}
    assert any(n.startswith("bert.embeddings") for n in frozen)
    assert any(n.startswith("classifier") for n in frozen)
    before = copy.deepcopy(enc.successor_modules.state_dict())

    opt = torch.optim.AdamW(trainable, lr=1e-2)
    hybrid.train()
    enc.set_replacement_mask(torch.tensor([True, False]))  # scc_1 below frozen prd_2
    hybrid(**batch()).loss.backward()
    for name, p in hybrid.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.successor_modules[0].parameters()
               if p.dim() > 1)
    assert all(p.grad is None for p in enc.successor_modules[1].parameters())
    opt.step()
    for name, p in hybrid.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    after = enc.successor_modules.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("0."))
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith("1."))


# --------------------------------------------------------------------- export


def test_assemble_rejects_foreign_layer_class():
    pred = tiny_bert()
    layer = pred.bert.encoder.layer[0]

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = copy.deepcopy(layer)

        def forward(self, hidden_states, *args, **kwargs):
            return self.inner(hidden_states, *args, **kwargs)

    hybrid = make_hybrid(pred, torch.nn.ModuleList([Wrapped(), Wrapped()]), N)
    hybrid.eval()
    logits(hybrid, batch())  # a non-layer successor still runs in the hybrid
    with pytest.raises(ExportError, match="Wrapped.*BertLayer"):
        assemble_successor(hybrid)
    with pytest.raises(ExportError, match="not a hybrid"):
        assemble_successor(tiny_bert())


def test_assembled_round_trip(tmp_path):
    hybrid, _ = hybrid_and_original()
    student = assemble_successor(hybrid).eval()
    student.save_pretrained(tmp_path)
    loaded = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    b = batch()
    with torch.no_grad():
        assert torch.equal(logits(loaded, b), logits(student, b))
    assert loaded.config.num_hidden_layers == N


def test_count_parameters():
    pred = tiny_bert()
    plain = count_parameters(pred)
    layer = sum(p.numel() for p in pred.bert.encoder.layer[0].parameters())
    assert plain["total"] == sum(p.numel() for p in pred.parameters())
    assert plain["layers"] == 4 * layer
    assert plain["layers"] + plain["other"] == plain["total"]
    embeddings = sum(p.numel() for p in pred.bert.embeddings.parameters())
    assert plain["other"] == embeddings + (32 * 32 + 32) + (32 * 2 + 2)  # + pooler, classifier
    hybrid, _ = hybrid_and_original()
    c = count_parameters(hybrid)
    assert c["predecessor_path"] == plain["total"]
    assert c["successor_path"] == plain["total"] - 2 * layer
    assert c["successor_path"] == count_parameters(assemble_successor(hybrid))["total"]
    assert sum(p.numel() for p in trainable_parameters(hybrid)) == N * layer
