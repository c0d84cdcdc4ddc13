"""Checkpoint files: atomic layout, weights_only loading, RNG round trip, policy."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from theseus_cli.errors import CheckpointError
from theseus_cli.store.checkpoint import (
    Checkpointer,
    CheckpointPolicy,
    capture_rng,
    plain,
    restore_rng,
)
from theseus_cli.train.runtime import Runtime


@pytest.fixture
def runtime():
    return Runtime("cpu", "no", seed=3)


def test_rng_round_trip_replays_every_generator():
    state = capture_rng()
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_save_load_round_trip_and_atomic_layout(tmp_path, runtime):
    ck = Checkpointer(tmp_path / ".checkpoints-x", "MRPC/replace")
    assert ck.load("replace", runtime) is None and not ck.exists()
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"event": "train"}\n')
    state = {"model": {"w": torch.arange(4.0)}, "best": plain({"score": np.float64(0.5)})}
    for step in (2, 4):
        ck.save("replace", step, runtime, state, log, {"epoch": 0})
    d = tmp_path / ".checkpoints-x" / "replace"
    assert sorted(p.name for p in d.iterdir()) == ["LATEST", "step-000000004"]  # older removed
    # a write killed half-way leaves a .tmp dir that is never read
    (d / ".tmp-step-000000006").mkdir()
    loaded = ck.load("replace", runtime)
    assert loaded.step == 4 and torch.equal(loaded.state["model"]["w"], torch.arange(4.0))
    assert loaded.state["best"]["score"] == 0.5 and type(loaded.state["best"]["score"]) is float
    assert loaded.log.read_text() == log.read_text() and "torch" in loaded.rng
    meta = json.loads((loaded.path / "meta.json").read_text())
    assert meta["num_processes"] == 1 and meta["run"] == "MRPC/replace"
    ck.discard()
    assert not (tmp_path / ".checkpoints-x").exists()


def test_unloadable_or_foreign_checkpoints_are_typed_errors(tmp_path, runtime):
    ck = Checkpointer(tmp_path / "c", "MRPC/replace")
    ck.save("p", 1, runtime, {"x": 1}, None, {})
    path = tmp_path / "c" / "p" / "step-000000001"
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "num_processes": 2}))
    with pytest.raises(CheckpointError, match="written by 2 process"):
        ck.load("p", runtime)
    (path / "meta.json").write_text(json.dumps(meta))
    # arbitrary pickled objects are refused: loading is weights_only
    torch.save({"x": object.__new__(Checkpointer)}, path / "state.pt")
    with pytest.raises(CheckpointError, match="cannot be read"):
        ck.load("p", runtime)


def test_policy_by_steps_and_minutes(runtime):
    assert CheckpointPolicy(3, None, runtime).due(6) and not CheckpointPolicy(3, None, runtime).due(7)
    assert not CheckpointPolicy(None, None, runtime).enabled
    late = CheckpointPolicy(None, 1e-9, runtime)
    assert late.due(1)
    never = CheckpointPolicy(None, 60.0, runtime)
    assert not never.due(1)
