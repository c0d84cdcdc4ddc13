"""What a newcomer meets on the surface: which successor `export` picks and why, an
emptied `--output` written again, short method labels with the recipe in a legend, a user
task's tables filed under its name, warnings that name their model, `--version`, and
command summaries that read alike."""

from __future__ import annotations

import json

from conftest import cli, copy_workspace, flat, manifest, versions
from test_user_tasks import _init, data  # noqa: F401 - data is a fixture


def test_export_picks_the_successor_ranked_first_not_the_newest(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    # a newer, untrained variant: learning rate 0 in both stages leaves it the worse one
    cli("replace", "-w", ws, "--learning-rate", "0", "--epochs", "1")
    cli("finetune-successor", "-w", ws, "--learning-rate", "0", "--from", "replace=v2")
    assert versions(ws, "finetune-successor") == ["v1", "v2"]
    out = flat(cli("evaluate", "-w", ws).output)
    table = json.loads((ws / "artifacts/GLUE/glue-table" / versions(ws, "glue-table", "GLUE")[-1]
                        / "tables.json").read_text())["MRPC"]
    ranked = sorted(table[1:-1], key=lambda r: -r["score"]["median"])
    assert ranked[0]["successors"] == ["MRPC/finetune-successor/v1"], (ranked, out)
    out = flat(cli("export", "-w", ws, "--format", "hf").output)
    assert "export reads MRPC/evaluate/" in out and "the successor ranked first in MRPC's " \
        "method table" in out and "MRPC/finetune-successor/v1" in out
    assert out.count("export reads") == 1  # said once, though the pre-flight check chose too
    latest = versions(ws, "export")[-1]
    assert manifest(ws, "export", latest)["info"]["model_artifact"] == "MRPC/finetune-successor/v1"


def test_an_emptied_export_output_is_written_again(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    dest = tmp_path / "out"
    cli("export", "-w", ws, "--output", dest)
    files = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    assert files
    for p in dest.iterdir():
        (p.unlink() if p.is_file() else __import__("shutil").rmtree(p))
    out = flat(cli("export", "-w", ws, "--output", dest).output)
    assert "is up to date" in out and "was empty or missing: copied" in out
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == files
    dest.rmdir() if not any(dest.iterdir()) else __import__("shutil").rmtree(dest)
    cli("export", "-w", ws, "--output", dest)
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == files


def test_method_labels_name_the_loss_and_stay_short(trained):
    ws, outputs = trained
    info = manifest(ws, "finetune-successor")["info"]
    assert info["method"] == "theseus 2L, task loss"
    assert info["recipe"].startswith("theseus 2L, linear b=0.3 steps_to_one=4")
    out = outputs["evaluate"]
    assert "Recipes:" in out and "theseus 2L, task loss: theseus 2L, linear" in flat(out)
    from theseus_builtin.stages.finetune_successor import method_label
    kd = {"distill_weight": 0.5, "temperature": 2.0}
    label, recipe = method_label({"layers": 3, "scheduler": {"name": "linear", "params": {
        "b": 0.3, "fraction_to_one": 0.65, "steps_to_one": None}}}, kd, kd)
    assert label == "theseus 3L + KD α=0.5"
    assert recipe == ("theseus 3L, linear b=0.3 fraction_to_one=0.65 + KD (replace) α=0.5 T=2 "
                      "+ KD (finetune) α=0.5 T=2")
    assert len(label) < 30


def test_a_user_task_files_its_tables_under_its_name(tmp_path, tiny_model_dir,
                                                     data):  # noqa: F811
    ws = _init(tmp_path / "ws", tiny_model_dir, data)
    cli("evaluate", "-w", ws)
    assert versions(ws, "glue-table", task="intents") == ["v1"]
    assert not (ws / "artifacts" / "GLUE").exists()
    assert "intents glue-table" in flat(cli("status", "-w", ws).output.replace("│", " "))


def test_degenerate_warning_names_its_model():
    from theseus_builtin.stages.evaluate import degenerate_warning

    w = degenerate_warning("successor (MRPC/finetune-successor/v2, theseus 3L, task loss)",
                           {"score": 0.5}, {"score": 0.5}, 0.99)
    assert w.startswith("the successor (MRPC/finetune-successor/v2, theseus 3L, task loss) "
                        "gives 99.0% one class on dev")


def test_version_and_help_summaries():
    from importlib.metadata import version

    result = cli("--version")
    assert result.output.strip() == f"theseus {version('theseus-cli')}"
    text = cli("--help").output
    commands = text.split("Commands:")[1].strip().splitlines()
    summaries = [line.split(None, 1)[1] for line in commands
                 if line.startswith("  ") and not line.startswith("    ")
                 and len(line.split(None, 1)) == 2]
    assert len(summaries) >= 10
    assert all(s[0].isupper() for s in summaries), summaries
    ends = [line.rstrip() for line in commands if line.strip()]
    entries, current = [], ""
    for line in ends:  # join each command's wrapped summary
        if line.startswith("  ") and not line.startswith("    ") and current:
            entries.append(current)
            current = ""
        current += " " + line.strip()
    entries.append(current)
    assert all(e.endswith(".") for e in entries), entries
