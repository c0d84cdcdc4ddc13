"""End to end on real GLUE MRPC with the embedded pretrained model (slow).

Skipped when the GLUE data (../shared/glue or $THESEUS_GLUE_DIR) is absent.
Runs the README's main job on a small slice of MRPC so that it takes about a
minute on a 2-core CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from theseus_cli.cli.app import app
from theseus_cli.data.sources import checkout_glue_dir

GLUE = checkout_glue_dir(Path(__file__).resolve().parents[1])

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (GLUE / "MRPC" / "dev.tsv").is_file(),
                                 reason=f"real GLUE data not found at {GLUE}")]


def test_main_job_on_real_mrpc(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runner = CliRunner()
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws), "--glue-dir", str(GLUE)]).exit_code == 0
    monkeypatch.chdir(ws)
    quick = ["--max-train-samples", "96", "--max-eval-samples", "96"]
    # the teacher's default trains until dev stops improving (up to 10 epochs): one here
    for args in (["finetune-teacher", "--epochs", "1", *quick],
                 ["replace", "--scheduler", "linear", "--epochs", "1", *quick],
                 ["finetune-successor", "--epochs", "1", *quick],
                 ["evaluate", "--speed-repeats", "1", *quick],
                 ["export", *quick],
                 ["status"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    evaluation = json.loads(next(ws.glob("artifacts/MRPC/evaluate/v1/manifest.json")).read_text())
    m = evaluation["metrics"]
    assert m["teacher_layers"] == 6 and m["successor_layers"] == 3
    assert 0.0 <= m["successor_f1"] <= 1.0 and 0.0 <= m["successor_accuracy"] <= 1.0
    assert m["successor_parameters"] < m["teacher_parameters"]
    assert m["speedup"] > 1.0  # 3 layers instead of 6 on the same batches
    export = json.loads((ws / "artifacts/MRPC/export/v1/manifest.json").read_text())
    assert export["metrics"]["logits_max_abs_diff"] <= 1e-5
