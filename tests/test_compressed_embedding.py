"""The word embedding as one more replaceable module: a factorised embedding (V×r·r×H from
the truncated SVD of the teacher's) routed by the same Bernoulli draws as the layers, on
every family; exact at p = 0, the assembled successor equal to the hybrid's successor
path, saved and read back by the theseus loader, exported to ONNX, refused with a bad
rank before any work."""

from __future__ import annotations

import pytest
import torch
from conftest import cli, flat, manifest, versions
from test_families import hybrid_of, logits
from tiny_models import MODEL_TYPES, batch

from theseus_cli.errors import ConfigError
from theseus_cli.method.parameters import count_parameters
from theseus_cli.method.replacing import assemble_successor, route_embedding, router_of
from theseus_cli.model import loading as models
from theseus_cli.model.embedding import (
    FactorizedEmbedding,
    embedding_rank,
    factorize,
    parameters_saved,
    relative_error,
)
from theseus_cli.plugin.registry import family_of


def test_factorize_is_the_truncated_svd():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(50, 16, padding_idx=0)
    full = factorize(emb, 16)  # full rank: the same table
    ids = torch.tensor([[0, 3, 49]])
    torch.testing.assert_close(full(ids), emb(ids), rtol=0, atol=1e-5)
    low = factorize(emb, 4)
    assert isinstance(low, FactorizedEmbedding) and low(ids).shape == (1, 3, 16)
    assert sum(p.numel() for p in low.parameters()) == 4 * (50 + 16)
    s = torch.linalg.svdvals(emb.weight.detach())
    want = float(torch.sqrt((s[4:] ** 2).sum() / (s ** 2).sum()))  # Eckart-Young
    assert relative_error(emb, low) == pytest.approx(want, rel=1e-4)
    assert parameters_saved(50, 16, 4) == 50 * 16 - 4 * 66
    assert embedding_rank(emb.weight, energy=0.999999) == 15  # capped below H
    assert embedding_rank(emb.weight, energy=1e-9) == 1
    for bad in ({"rank": 16}, {"rank": 0}, {"energy": 1.0}, {}):
        with pytest.raises(ConfigError):
            embedding_rank(emb.weight, **bad)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_routed_embedding_is_exact_at_p0_and_assembles_on_every_family(model_type, tmp_path):
    hybrid, original = hybrid_of(model_type)
    router, b = router_of(hybrid), batch()
    teacher_emb = hybrid.get_input_embeddings()
    rank = max(1, teacher_emb.embedding_dim // 4)
    route_embedding(hybrid, factorize(teacher_emb, rank))
    assert router.num_draws == router.num_modules + 1
    router.eval_path = "predecessor"
    assert torch.equal(logits(hybrid, b), logits(original, b))  # p = 0: exactly
    hybrid.train()
    for m in hybrid.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    hybrid.config.attention_dropout = 0.0
    router.set_replacement_mask(torch.zeros(router.num_draws, dtype=torch.bool))
    if model_type != "modernbert":  # its attention dropout reads the config at call time
        torch.testing.assert_close(logits(hybrid, b), logits(original, b), rtol=0, atol=1e-6)
    hybrid.eval()
    router.eval_path = "successor"
    successor = assemble_successor(hybrid).eval()
    assert isinstance(successor.get_input_embeddings(), FactorizedEmbedding)
    assert successor.theseus_successor["embedding"] == {"type": "factorized", "rank": rank}
    expected = logits(hybrid, b)
    torch.testing.assert_close(logits(successor, b), expected, rtol=0, atol=1e-6)
    sizes = count_parameters(successor)
    assert sizes["embedding"] == rank * (teacher_emb.num_embeddings + teacher_emb.embedding_dim)
    assert sizes["total"] == count_parameters(hybrid)["successor_path"]
    tokenizer_free = tmp_path / "model"
    successor.save_pretrained(tokenizer_free)
    from theseus_cli.store import jsonio
    (tokenizer_free / models.SUCCESSOR_FILE).write_text(jsonio.dumps(successor.theseus_successor))
    loaded = models.load_restructured(tokenizer_free)
    torch.testing.assert_close(logits(loaded, b), expected, rtol=0, atol=1e-6)


def test_training_reaches_the_factors_only(tmp_path):
    """A step with only the embedding replaced trains its factors and nothing else."""
    hybrid, _ = hybrid_of("bert")
    router = router_of(hybrid)
    slot = route_embedding(hybrid, factorize(hybrid.get_input_embeddings(), 8))
    trainable = [p for p in hybrid.parameters() if p.requires_grad]
    ids = {id(p) for p in trainable}
    assert {id(p) for p in slot.successor.parameters()} <= ids
    assert not any(p.requires_grad for p in slot.predecessor.parameters())
    hybrid.train()
    mask = torch.zeros(router.num_draws, dtype=torch.bool)
    mask[-1] = True  # the embedding only
    router.set_replacement_mask(mask)
    before = {n: p.detach().clone() for n, p in slot.successor.named_parameters()}
    hybrid(**batch(), labels=torch.tensor([0, 1, 1])).loss.backward()
    torch.optim.SGD(trainable, lr=0.1).step()
    assert all(not torch.equal(p, before[n]) for n, p in slot.successor.named_parameters())
    assert all(p.grad is None for p in router.successor_modules.parameters())


def test_replace_with_a_compressed_embedding_through_the_cli(workspace):
    cli("finetune-teacher", "-w", workspace)
    out = flat(cli("replace", "--embedding-rank", "8", "-w", workspace).output)
    info = manifest(workspace, "replace")["info"]
    assert info["embedding"]["rank"] == 8 and "word embedding → rank 8 factors" in out
    assert (workspace / "artifacts/MRPC/replace/v1/model" / models.SUCCESSOR_FILE).is_file()
    out = flat(cli("finetune-successor", "-w", workspace).output)
    m = manifest(workspace, "finetune-successor")
    assert m["info"]["method"] == "theseus 2L, emb r=8, task loss"
    assert "word embedding rank 8" in m["info"]["recipe"]
    teacher = manifest(workspace, "finetune-teacher")["info"]["parameters"]["total"]
    assert m["info"]["parameters"]["embedding"] < teacher
    table = flat(cli("evaluate", "-w", workspace).output)
    assert "theseus 2L, emb r=8, task loss" in table
    out = flat(cli("export", "--format", "hf,onnx", "-w", workspace).output)
    assert "exported: hf" in out and "onnx" in out


@pytest.mark.parametrize("args, expect", [
    (["--embedding-rank", "32"], "--embedding-rank 32: the rank must lie between 1 and 31"),
    (["--embedding-rank", "4", "--embedding-energy", "0.9"], "give one of them, not both"),
    (["--embedding-energy", "1.0"], "--embedding-energy 1.0: accepted: a fraction in (0, 1)"),
])
def test_bad_embedding_settings_are_refused_before_any_work(workspace, args, expect):
    result = cli("replace", *args, "-w", workspace, ok=False)
    assert result.exit_code != 0 and expect in flat(result.output), flat(result.output)
    assert versions(workspace, "finetune-teacher") == versions(workspace, "replace") == []


def test_a_factorised_embedding_is_trimmed_too(workspace):
    """trim-vocab after replace --embedding-rank: the factors' table loses rows, the
    projection stays, the dev score is unchanged and the loader reads it back."""
    cli("finetune-teacher", "-w", workspace)
    cli("replace", "--embedding-rank", "8", "-w", workspace)
    cli("finetune-successor", "-w", workspace)
    cli("trim-vocab", "-w", workspace)
    m = manifest(workspace, "trim-vocab")
    model, tokenizer = models.load_saved(workspace / "artifacts/MRPC/trim-vocab/v1/model")
    emb = model.get_input_embeddings()
    assert isinstance(emb, FactorizedEmbedding) and emb.rank == 8
    assert emb.num_embeddings == len(tokenizer) == m["metrics"]["vocab_size"]
    assert m["metrics"]["score"] == pytest.approx(
        manifest(workspace, "finetune-successor")["metrics"]["score"])


def test_a_factorised_deberta_embedding_is_stock_deberta(tmp_path):
    """DeBERTa-v2/v3 without position or token-type embeddings before the LayerNorm:
    ``embedding_size`` r and ``embed_proj`` compute the factorised embedding exactly."""
    from transformers import AutoModelForSequenceClassification

    hybrid, _ = hybrid_of("deberta-v2")
    route_embedding(hybrid, factorize(hybrid.get_input_embeddings(), 4))
    router_of(hybrid).eval_path = "successor"
    successor = assemble_successor(hybrid.eval()).eval()
    stock, line = family_of(successor).stock_form(successor)
    assert "embedding_size 4" in line
    stock.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.embedding_size == 4
    assert reloaded.deberta.embeddings.embed_proj.weight.shape == (32, 4)  # H × r
    b = batch()
    torch.testing.assert_close(logits(reloaded, b), logits(successor, b), rtol=0, atol=1e-5)
    successor.config.position_biased_input = True  # a position embedding before the map
    assert family_of(successor).stock_form(successor) is None
    bert, _ = hybrid_of("bert")  # BERT adds its position embeddings before the LayerNorm
    route_embedding(bert, factorize(bert.get_input_embeddings(), 4))
    bert_successor = assemble_successor(bert.eval())
    assert family_of(bert_successor).stock_form(bert_successor) is None
