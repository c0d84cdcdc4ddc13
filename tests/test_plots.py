"""Plots: the training curves of every training stage and the score-against-speed-up
chart of the GLUE table, written into the artifacts and named in the output."""

from __future__ import annotations

import pytest
from conftest import cli, copy_workspace, flat, manifest, versions

from theseus_cli import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


@pytest.mark.parametrize("stage", ["finetune-teacher", "replace", "finetune-successor"])
def test_training_stages_publish_their_curves(trained, stage):
    ws, outputs = trained
    art = ws / "artifacts" / "MRPC" / stage / versions(ws, stage)[-1]
    assert _png(art / plots.CURVES)
    assert manifest(ws, stage)["info"]["plots"] == [plots.CURVES]
    assert "plot: curves.png" in flat(outputs["replace"])  # named in the output


def test_replace_curves_show_the_replacing_rate(tmp_path, monkeypatch):
    records = [{"event": "train", "step": t, "loss": 1.0 / t, "p": min(1.0, 0.3 + 0.1 * t)}
               for t in range(1, 21)] + [{"event": "eval", "step": 20, "dev_score": 0.7}]
    import matplotlib.pyplot as plt

    seen = []
    original = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        seen.append([ax.get_ylabel() for ax in fig.axes])
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    assert _png(plots.training_curves(records, "t", tmp_path / "curves.png"))
    assert seen == [["replacing rate p", "training loss", "dev score"]]
    assert plots.training_curves([{"event": "eval", "step": 1, "dev_score": 0.5}], "t",
                                 tmp_path / "none.png") is None  # nothing trained


def test_glue_table_charts_score_against_speed_up(trained):
    ws, outputs = trained
    latest = versions(ws, "glue-table", "GLUE")[-1]
    assert _png(ws / "artifacts" / "GLUE" / "glue-table" / latest / "chart_MRPC.png")
    assert manifest(ws, "glue-table", latest, "GLUE")["info"]["charts"] == ["chart_MRPC.png"]
    assert "chart_MRPC.png" in flat(outputs["evaluate"])


def test_a_failing_plot_never_costs_the_run(trained, tmp_path, monkeypatch):
    ws = copy_workspace(trained[0], tmp_path / "ws")

    def broken():
        raise ImportError("no matplotlib here")

    monkeypatch.setattr(plots, "_pyplot", broken)
    out = flat(cli("replace", "-w", ws, "--force").output)
    assert "could not draw curves.png" in out and "published without it" in out
    assert manifest(ws, "replace", versions(ws, "replace")[-1])["info"]["plots"] == []
