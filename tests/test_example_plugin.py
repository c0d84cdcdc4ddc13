"""The example third-party package (plugins/theseus-example) installed with pip into a
fresh virtual environment and used from the CLI end to end, in subprocesses.

The fresh environment sees this environment's packages (torch, transformers,
theseus-cli) through a ``.pth`` file, so nothing is downloaded; the example package
itself is installed only there, so the rest of the test suite never sees it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import FAST, set_yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "theseus-example"


def run(python: Path, *args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "COLUMNS": "300", "PYTHONPATH": ""}
    done = subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, args
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new virtual environment with the example package pip-installed; its python."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .strip())
    parent = sysconfig.get_paths()["purelib"]  # addsitedir: its own .pth files count too
    (site / "parent-env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    run(python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        str(PACKAGE))
    return python


def test_example_package_is_listed_with_its_distribution(venv):
    text = run(venv, "-m", "theseus_cli", "plugins")
    for kind, name in (("scheduler", "cosine"), ("successor builder", "random-init"),
                       ("model family", "roformer"), ("stage", "refine"),
                       ("task kind", "balanced-classification")):
        row = next(line for line in text.splitlines() if f" {name} " in line)
        assert kind in row and "theseus-example 0.1.0" in row, row
    # this environment never saw it
    from theseus_cli.plugin import registry

    assert "cosine" not in registry.available("theseus.schedulers")


def test_example_plugins_run_the_pipeline(venv, tmp_path, models, glue_dir):
    ws = tmp_path / "ws"
    run(venv, "-m", "theseus_cli", "init", str(ws), "--model", str(models["roformer"]),
        "--glue-dir", str(glue_dir))
    set_yaml(ws, {**FAST, "data": {"max_seq_length": 64}})
    out = run(venv, "-m", "theseus_cli", "replace", "-w", str(ws), "--scheduler", "cosine",
              "--scheduler-arg", "fraction_to_one=0.5", "--successor", "random-init")
    assert "cos(π·t/3)" in out  # 6 optimizer steps, p = 1 at half of them
    for command in ("finetune-successor", "evaluate", "export"):
        run(venv, "-m", "theseus_cli", command, "-w", str(ws))
    # the example stage: trains through its context only, and its successor is evaluated
    out = run(venv, "-m", "theseus_cli", "refine", "-w", str(ws), "--max-steps", "2")
    assert "published MRPC/refine/v1" in out
    run(venv, "-m", "theseus_cli", "evaluate", "-w", str(ws), "--successor", "refine")
    import json

    m = json.loads((ws / "artifacts/MRPC/replace/v1/manifest.json").read_text())
    assert m["info"]["family"] == "roformer" and m["info"]["successor_builder"]["name"] == "random-init"
    assert m["info"]["scheduler"]["name"] == "cosine"
    assert (ws / "artifacts/MRPC/export/v1/model/model.safetensors").is_file()
    refined = json.loads((ws / "artifacts/MRPC/refine/v1/manifest.json").read_text())
    assert refined["info"]["layers"] == m["info"]["modules"]
    assert refined["info"]["method"].endswith("+ refine lr=1e-05")
    assert refined["inputs"]["finetune-successor"]["version"] == "v1"
    evaluated = json.loads((ws / "artifacts/MRPC/evaluate/v2/manifest.json").read_text())
    assert "refine" in evaluated["inputs"], evaluated["inputs"]


def test_a_third_party_task_kind_runs_a_users_task(venv, tmp_path, tiny_model_dir):
    """``--kind balanced-classification`` (the example package's): its metrics are reported
    and its score (macro-F1) selects the checkpoint; other stages need nothing else."""
    import json

    data = tmp_path / "tickets.csv"
    rows = ["text,label"] + [f"{w} the cat sat,{'billing' if i % 4 else 'refund'}"
                             for i, w in enumerate(["dog", "cake", "milk", "tree"] * 10)]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ws = tmp_path / "ws"
    run(venv, "-m", "theseus_cli", "init", str(ws), "--model", str(tiny_model_dir),
        "--task", "tickets", "--train", str(data), "--kind", "balanced-classification")
    set_yaml(ws, FAST)
    run(venv, "-m", "theseus_cli", "finetune-teacher", "-w", str(ws), "--max-steps", "2")
    m = json.loads((ws / "artifacts/tickets/finetune-teacher/v1/manifest.json").read_text())
    assert set(m["metrics"]) >= {"balanced_accuracy", "macro_f1", "score"}
    assert m["metrics"]["score"] == m["metrics"]["macro_f1"]
