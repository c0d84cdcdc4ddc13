"""``theseus sweep``: a grid over a stage's params × seeds, the sweep artifact, the best
configuration, resume after a real SIGKILL, and bad ``--param`` values (before any work).

Every run is the tiny random BERT of conftest on the generated MRPC (48 training
rows, batch 8: 6 optimizer steps per epoch), so one (combination, seed) takes
about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import statistics

import procs
import pytest
from conftest import cli, flat, versions

STAGE = "finetune-teacher"
GRID = ("--param", "learning_rate=1e-2,3e-3", "--param", "epochs=2,4", "--seeds", "2")
SWEEP = ("sweep", STAGE, *GRID)
COMBOS = [{"learning_rate": lr, "epochs": e} for lr in (1e-2, 3e-3) for e in (2, 4)]


def _manifest(ws, label):
    task, stage, version = label.split("/")
    return json.loads((ws / "artifacts" / task / stage / version / "manifest.json").read_text())


def _sweep_dir(ws, version="v1"):
    return ws / "artifacts" / "MRPC" / "sweep" / version


def _check_sweep(ws):
    """The sweep artifact lists the 4 combinations × 2 seeds, each run a distinct
    artifact version made with its params and seed, and picks the best by the
    median (ties: higher mean, then earlier trial) recomputed from the manifests."""
    d = _sweep_dir(ws)
    doc = json.loads((d / "trials.json").read_text())
    trials = doc["trials"]
    assert sorted((t["params"]["learning_rate"], t["params"]["epochs"]) for t in trials) == \
        sorted((c["learning_rate"], c["epochs"]) for c in COMBOS)
    labels = [r["artifact"] for t in trials for r in t["runs"]]
    assert len(labels) == len(set(labels)) == 8
    recomputed = []
    for t in trials:
        assert [r["seed"] for r in t["runs"]] == [42, 43]
        scores = []
        for r in t["runs"]:
            m = _manifest(ws, r["artifact"])
            assert m["params"]["learning_rate"] == t["params"]["learning_rate"]
            assert m["params"]["epochs"] == t["params"]["epochs"]
            assert m["config"]["runtime"]["seed"] == r["seed"]
            assert r["metrics"]["score"] == m["metrics"]["score"]
            scores.append(m["metrics"]["score"])
        assert t["median"] == pytest.approx(statistics.median(scores))
        assert t["mean"] == pytest.approx(statistics.fmean(scores))
        assert t["std"] == pytest.approx(statistics.stdev(scores))
        recomputed.append((statistics.median(scores), statistics.fmean(scores), -t["trial"], t))
    expected = max(recomputed, key=lambda x: x[:3])[3]
    best = json.loads((d / "best.json").read_text())
    assert best["trial"] == expected["trial"] and best["params"] == expected["params"]
    assert best["median"] == pytest.approx(expected["median"]) and best["n_seeds"] == 2
    # the manifest: params, every trial artifact with its manifest hash, the best as input
    m = json.loads((d / "manifest.json").read_text())
    assert m["stage"] == "sweep" and m["params"]["seeds"] == [42, 43]
    assert set(m["trial_artifacts"]) == set(labels)
    for label, ref in m["trial_artifacts"].items():
        sha = hashlib.sha256(
            (ws / "artifacts" / label / "manifest.json").read_bytes()).hexdigest()
        assert ref["manifest_sha256"] == sha
    [(key, ref)] = m["inputs"].items()
    assert key == f"MRPC/{STAGE}" and f"MRPC/{STAGE}/{ref['version']}" in best["artifacts"]
    assert m["metrics"]["best_median"] == pytest.approx(best["median"])
    assert {"seconds", "started_at"} <= set(m["timings"]) and "optuna" in m["library_versions"]
    table = (d / "trials.md").read_text()
    assert table.count(f"MRPC/{STAGE}/v") == 8
    return best


def test_grid_sweep_publishes_every_trial_and_picks_the_best(workspace):
    out = flat(cli(*SWEEP, "-w", workspace).output)
    assert versions(workspace, STAGE) == [f"v{i}" for i in range(1, 9)]
    assert versions(workspace, "sweep") == ["v1"]
    assert "trial 1/4: learning_rate=0.01 epochs=2 seed 42 → score" in out
    assert "trial 4/4: learning_rate=0.003 epochs=4 seed 43 → score" in out
    assert "4/4 trials finished; best so far: trial #" in out and "left (" in out
    best = _check_sweep(workspace)
    assert "published MRPC/sweep/v1" in out

    # command.txt reproduces the best configuration: the same fingerprint as its trial run
    lines = [x for x in (_sweep_dir(workspace) / "command.txt").read_text().splitlines()
             if x.startswith(f"theseus {STAGE} ")]
    assert len(lines) == 2 and lines[0].endswith("--seed 42") and lines == best["commands"]
    cli(*shlex.split(lines[0])[1:], "--force", "-w", workspace)  # retrain, publish v9
    assert versions(workspace, STAGE)[-1] == "v9"
    trial_run, rerun = (_manifest(workspace, best["artifacts"][0]),
                        _manifest(workspace, f"MRPC/{STAGE}/v9"))
    assert rerun["fingerprint"] == trial_run["fingerprint"]
    assert rerun["metrics"] == trial_run["metrics"]

    # the same sweep again: nothing retrained, the sweep artifact is up to date
    before = versions(workspace, STAGE)
    again = flat(cli(*SWEEP, "-w", workspace).output)
    assert "4 of 4 combinations already finished in study" in again
    assert "is up to date (the same trials)" in again
    assert versions(workspace, STAGE) == before and versions(workspace, "sweep") == ["v1"]
    assert "all 10 versions match their manifests" in flat(cli("verify", "-w", workspace).output)


def test_sigkill_midway_then_rerun_finishes_without_rerunning_finished_trials(tmp_path,
                                                                               workspace):
    stage_dir = workspace / "artifacts" / "MRPC" / STAGE
    proc = procs.start(procs.theseus(*SWEEP, "-w", workspace), tmp_path / "killed.log")
    # v3 is the first seed of the second trial: trial 1 is complete, trial 2 is running
    procs.wait_for(lambda: (stage_dir / "v3").is_dir(), proc, what="the third run's artifact")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=procs.TIMEOUT) == -signal.SIGKILL
    assert versions(workspace, "sweep") == []

    rerun = procs.run(procs.theseus(*SWEEP, "-w", workspace))
    assert rerun.returncode == 0, rerun.stdout
    out = flat(rerun.stdout)
    assert "1 of 4 combinations already finished in study" in out
    assert f"was left RUNNING by pid {proc.pid}" in out and "marked failed" in out
    assert f"reused MRPC/{STAGE}/v3: same fingerprint, not retrained" in out
    # 4 combinations × 2 seeds, no duplicate: the finished runs were not trained again
    assert versions(workspace, STAGE) == [f"v{i}" for i in range(1, 9)]
    _check_sweep(workspace)
    doc = json.loads((_sweep_dir(workspace) / "trials.json").read_text())
    assert [f["error"] for f in doc["failed"]] and "no longer running" in doc["failed"][0]["error"]


def test_random_sampler_over_a_log_range_resumes_the_same_study(workspace):
    args = ("sweep", STAGE, "--param", "learning_rate=1e-4:1e-2:log", "--sampler", "random",
            "-w", workspace)
    out = flat(cli(*args, "--trials", "2").output)
    assert "2/2 trials finished" in out
    doc = json.loads((_sweep_dir(workspace) / "trials.json").read_text())
    assert len(doc["trials"]) == 2
    assert all(1e-4 <= t["params"]["learning_rate"] <= 1e-2 for t in doc["trials"])
    # more trials: the same study (its name does not depend on --trials) goes on
    out = flat(cli(*args, "--trials", "3").output)
    assert "3/3 trials finished" in out and out.count("→ score") == 1
    doc = json.loads((_sweep_dir(workspace, "v2") / "trials.json").read_text())
    assert len(doc["trials"]) == 3 and len(versions(workspace, STAGE)) == 3



def test_holdout_sweep_names_the_split_it_picks_on(workspace):
    from conftest import set_yaml

    set_yaml(workspace, {"data": {"selection": "holdout"}})
    out = flat(cli("sweep", STAGE, "--param", "learning_rate=1e-2,3e-3", "--select", "holdout",
                   "-w", workspace).output)
    assert "2/2 trials finished" in out and "median held-out score" in out
    assert "median dev" not in out
    assert json.loads((_sweep_dir(workspace) / "best.json").read_text())["select"] == "holdout"
    trials = (_sweep_dir(workspace) / "trials.md").read_text()
    assert "median over seeds of the held-out 'score'" in trials
    assert "held-out score" in (_sweep_dir(workspace) / "command.txt").read_text()

BAD = [
    ("unknown name", (STAGE, "--param", "learnin_rate=1e-3"),
     ["'learnin_rate'", "accepted: ", "learning_rate"]),
    ("bad type", (STAGE, "--param", "epochs=1,zero"), ["--param epochs", "expected int", "'zero'"]),
    ("below minimum", (STAGE, "--param", "epochs=0,1"), ["--param epochs", "0", "minimum 1"]),
    ("not searchable", (STAGE, "--param", "save_every=1,2"), ["'save_every'", "accepted: "]),
    ("seed", (STAGE, "--param", "seed=1,2"), ["'seed'", "--seeds"]),
    ("plugin arg", ("replace", "--param", "scheduler.bb=0.1"),
     ["scheduler.bb", "accepted: ", "scheduler.b"]),
    ("plugin arg value", ("replace", "--param", "scheduler.b=0.1,1.5"),
     ["--param scheduler.b", "1.5", "maximum 1"]),
    ("combination", ("replace", "--param", "scheduler=linear,constant", "--param",
                     "scheduler.b=0.1"), ["combination", "scheduler=constant", "'b'"]),
    ("range syntax", (STAGE, "--param", "learning_rate=1e-4:1e-2:lin"),
     ["1e-4:1e-2:lin", "LOW:HIGH:log"]),
    ("range on grid", (STAGE, "--param", "learning_rate=1e-4:1e-2", "--sampler", "grid"),
     ["--sampler grid", "range", "random|tpe"]),
    ("range without trials", (STAGE, "--param", "learning_rate=1e-4:1e-2"), ["--trials N"]),
    ("sampler", (STAGE, "--param", "epochs=1", "--sampler", "bayes"),
     ["'bayes'", "accepted: grid, random, tpe"]),
    ("seeds", (STAGE, "--param", "epochs=1", "--seeds", "two"), ["--seeds 'two'", "1,2,3"]),
    ("seed bound", (STAGE, "--param", "epochs=1", "--seeds", "-1,2"),
     ["--seeds -1,2", "seed -1", "[0, 4294967295]"]),
    ("select", (STAGE, "--param", "epochs=1", "--select", "test"),
     ["--select 'test'", "accepted: dev, holdout"]),
    ("holdout", (STAGE, "--param", "epochs=1", "--select", "holdout"),
     ["--select holdout: the workspace selects on dev", "set data.selection: holdout"]),
    ("storage", (STAGE, "--param", "epochs=1", "--storage", "not a url"),
     ["--storage 'not a url'", "sqlite:///"]),
    ("stage", ("evaluate", "--param", "eval_batch_size=8"), ["evaluate publishes no dev 'score'",
                                                             "accepted stages: "]),
    ("no param", (STAGE,), ["at least one --param", "learning_rate"]),
]


@pytest.mark.parametrize("case,args,needles", BAD, ids=[c[0] for c in BAD])
def test_bad_param_fails_with_exit_2_before_any_training(workspace, case, args, needles):
    result = cli("sweep", *args, "-w", workspace, ok=False)
    out = flat(result.output)
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, (needle, out)
    assert not (workspace / "artifacts" / "MRPC" / STAGE).exists()
    assert not (workspace / "artifacts" / "MRPC" / "replace").exists()
