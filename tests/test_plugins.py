"""Plugins: built-ins come through entry points; third-party ones too; broken ones are skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from theseus_cli.errors import UnknownNameError
from theseus_cli.plugin import (
    FAMILY_GROUP,
    SCHEDULER_GROUP,
    STAGE_GROUP,
    SUCCESSOR_GROUP,
    TASK_KIND_GROUP,
    registry,
)


def test_builtins_register_through_entry_points():
    assert set(registry.stages()) == {"finetune-teacher", "replace", "finetune-successor",
                                      "evaluate", "export", "truncate", "distill", "glue-table",
                                      "benchmark", "pkd", "layerdrop", "trim-vocab"}
    # pipeline order: inputs before the stages that read them
    order = list(registry.stages())
    for name, cls in registry.stages().items():
        assert all(order.index(dep) < order.index(name) for dep in cls.inputs), name
    assert set(registry.available(SCHEDULER_GROUP)) == {"constant", "linear", "anti-curriculum"}
    assert set(registry.available(SUCCESSOR_GROUP)) == {"first-n", "every-other", "narrow-ffn",
                                                        "low-rank", "head-pruned", "narrow-hidden",
                                                        "shared", "compose"}
    assert set(registry.available(FAMILY_GROUP)) == {
        "bert", "roberta", "mpnet", "electra", "distilbert", "deberta-v2", "albert",
        "modernbert", "llama", "gpt2"}
    assert set(registry.available(TASK_KIND_GROUP)) == {
        "sequence-classification", "regression", "token-classification"}
    for info in registry.discover(STAGE_GROUP):
        assert info.distribution.startswith("theseus-cli")


def test_unknown_name_lists_available():
    with pytest.raises(UnknownNameError) as e:
        registry.scheduler("cosine")
    assert "cosine" in str(e.value) and "constant, linear" in str(e.value)


@pytest.fixture
def third_party(tmp_path: Path) -> dict[str, str]:
    """A fake installed distribution with one working and two broken plugins."""
    site = tmp_path / "site"
    (site / "acme_theseus").mkdir(parents=True)
    (site / "acme_theseus" / "__init__.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from theseus_cli.plugin import Scheduler, param

        class StepScheduler(Scheduler):
            name = "step"
            help = "p jumps from p0 to 1 at step t1"

            @dataclass
            class Params:
                p0: float = param(0.5, "rate before t1", min=0.0, max=1.0)
                t1: int = param(100, "optimizer step of the jump", min=0)

            def rate(self, step):
                return 1.0 if step >= self.params.t1 else self.params.p0

        class NotAScheduler:
            name = "wrong"
    '''))
    dist = site / "acme_theseus-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-theseus\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[theseus.schedulers]\n"
        "step = acme_theseus:StepScheduler\n"
        "missing = acme_theseus.nope:Thing\n"
        "wrong = acme_theseus:NotAScheduler\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return env


def _theseus(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "theseus_cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_broken_third_party_plugin_never_crashes_help(third_party, tmp_path):
    result = _theseus(["--help"], third_party, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "replace" in result.stdout
    assert "missing" in result.stderr and "failed to load" in result.stderr
    assert "wrong" in result.stderr and "not a subclass of Scheduler" in result.stderr


def test_third_party_scheduler_is_listed_and_usable(third_party, tmp_path):
    result = _theseus(["plugins"], third_party, tmp_path)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "step" in out and "acme-theseus 0.1" in out and "broken" in out
    # its Params become theseus.yaml keys written by init, and validate
    result = _theseus(["init", "ws"], third_party, tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "ws" / "theseus.yaml").read_text()
    assert "step:" in text and "p0: 0.5" in text and "t1: 100" in text


def test_the_glue_table_is_a_stage_without_a_command(tmp_path):
    """Run by evaluate through the pipeline; nothing for the user to call or configure."""
    from typer.testing import CliRunner

    from theseus_cli.cli.app import app
    from theseus_cli.workspace.template import render

    assert registry.stage("glue-table").command is False
    result = CliRunner().invoke(app, ["glue-table"])
    assert result.exit_code == 2 and "No such command" in result.output
    text = render("embedded", "MRPC", None, {})
    assert "\nevaluate:" in text and "glue-table" not in text
