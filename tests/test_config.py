"""theseus.yaml validation, precedence (defaults < file < CLI) and the init template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import cli, flat, manifest, read_yaml, set_yaml, versions

from theseus_cli.data.glue import TASKS
from theseus_cli.errors import ConfigError, WorkspaceError
from theseus_cli.plugin import registry
from theseus_cli.workspace.config import load_config, parse_config

STAGES = ("finetune-teacher", "replace", "finetune-successor", "evaluate", "export", "truncate",
          "distill", "benchmark", "pkd", "layerdrop", "trim-vocab")
TOP = ("benchmark, data, distill, evaluate, export, finetune-successor, finetune-teacher, layerdrop, "
       "model, pkd, replace, runtime, task, tasks, trim-vocab, truncate")
TRAINING_KEYS = ("batch_size, epochs, eval_batch_size, eval_every, group_by_length, learning_rate, "
                 "max_grad_norm, max_nonfinite_steps, max_steps, patience, save_every, save_every_minutes, "
                 "warmup_ratio, weight_decay")


def err(doc) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(Path("/ws"), doc)
    return str(e.value)


# ------------------------------------------------------------ validation
@pytest.mark.parametrize("doc,message", [
    ({"modle": "x"}, f"theseus.yaml: unknown key 'modle'; accepted: {TOP}"),
    ({"replace": {"epoch": 1}},
     "theseus.yaml: replace: unknown key 'epoch'; accepted: batch_size, distill_weight, "
     "embedding_energy, embedding_rank, epochs, eval_batch_size"),
    ({"finetune-teacher": {"lr": 1}},
     f"theseus.yaml: finetune-teacher: unknown key 'lr'; accepted: adopt, {TRAINING_KEYS}"
),
    ({"data": {"glue": "x"}}, "theseus.yaml: data: unknown key 'glue'; accepted: glue_dir, "
                              "holdout_fraction, max_eval_samples, max_seq_length, "
                              "max_train_samples, selection"),
    ({"runtime": {"precision": "fp8"}},
     "theseus.yaml: runtime.precision: invalid value 'fp8'; accepted: no, fp16, bf16"),
    ({"runtime": {"device": "tpu"}}, "runtime.device: invalid value 'tpu'; accepted: auto, cuda, "
                                     "mps, cpu"),
    ({"finetune-teacher": {"epochs": "many"}},
     "theseus.yaml: finetune-teacher.epochs: expected int, got 'many'"),
    ({"finetune-teacher": {"epochs": 1.5}}, "finetune-teacher.epochs: expected int, got 1.5"),
    ({"finetune-teacher": {"learning_rate": -1}},
     "theseus.yaml: finetune-teacher.learning_rate: -1.0 is below the minimum 0.0"),
    ({"replace": {"warmup_ratio": 2}}, "replace.warmup_ratio: 2.0 is above the maximum 1.0"),
    ({"data": {"max_seq_length": 4}}, "data.max_seq_length: 4 is below the minimum 8"),
    ({"finetune-successor": {"train": "everything"}},
     "finetune-successor.train: invalid value 'everything'; accepted: successor-layers, all"),
    ({"runtime": {"seed": None}}, "runtime.seed: a value is required (got null)"),
    ({"task": "MRPCX"}, "theseus.yaml: task: unknown task 'MRPCX'; available: AX, CoLA, MNLI, "
                        "MRPC, QNLI, QQP, RTE, SST-2, STS-B, WNLI"),
    ({"replace": {"schedulers": {"linear": {"b": "high"}}}},
     "theseus.yaml: replace.schedulers.linear.b: expected float, got 'high'"),
    ({"replace": {"schedulers": {"linear": {"slope": 1}}}},
     "replace.schedulers.linear: unknown key 'slope'; accepted: b, fraction_to_one, k, steps_to_one"),
    ({"replace": {"schedulers": {"linear": {"k": -1}}}}, "linear scheduler: k=-1.0 must be > 0"),
    ({"replace": {"schedulers": {"constant": {"p": 1.2}}}},
     "replace.schedulers.constant.p: 1.2 is above the maximum 1.0"),
    ({"replace": {"schedulers": {"linear": 3}}},
     "replace.schedulers.linear: expected a mapping, got 3"),
    ({"replace": [1, 2]}, "theseus.yaml: replace: expected a mapping"),
    (["model"], "expected a mapping at the top level, got list"),
])
def test_parse_config_errors(doc, message):
    assert message in err(doc)


def test_absent_plugins_warn_on_load_and_fail_only_when_selected():
    """A plugin uninstalled since theseus.yaml named it: the workspace still loads
    (a warning names it); selecting it is an error that lists the available ones."""
    cfg = parse_config(Path("/ws"), {"replace": {"scheduler": "nope",
                                                 "schedulers": {"cosine": {"x": 1}},
                                                 "successors": {"last-n": {}}}})
    text = " | ".join(cfg.warnings)
    assert "theseus.yaml: replace.scheduler: scheduler 'nope' is not installed (available: " \
           "anti-curriculum, constant, linear)" in text
    assert "replace.schedulers.cosine: scheduler 'cosine' is not installed" in text
    assert "replace.successors.last-n: successor builder 'last-n' is not installed" in text
    with pytest.raises(ConfigError) as e:
        cfg.stage_params("replace")
    assert ("replace.scheduler: unknown scheduler 'nope'; "
            "available: anti-curriculum, constant, linear") in str(e.value)
    # not selected: running with an installed scheduler ignores the absent one's arguments
    ok = parse_config(Path("/ws"), {"replace": {"schedulers": {"cosine": {"x": 1}}}})
    assert ok.stage_params("replace").scheduler == "linear"
    with pytest.raises(ConfigError,
                       match="unknown successor builder 'last-n'; available: compose, every-other, first-n"):
        parse_config(Path("/ws"), {"replace": {"successor": "last-n"}}).stage_params("replace")


def test_valid_config_and_defaults():
    cfg = parse_config(Path("/ws"), {"task": "sts-b", "model": "some/hub-id",
                                     "runtime": {"precision": "bf16", "seed": "7"},
                                     "replace": {"schedulers": {"linear": {"b": 0.1}}}})
    assert (cfg.task, cfg.model, cfg.runtime.precision, cfg.runtime.seed) == (
        "STS-B", "some/hub-id", "bf16", 7)
    assert cfg.data.max_seq_length is None and cfg.glue_dir() is None  # null: the task's (paper)
    assert cfg.tasks == ["STS-B"]
    multi = parse_config(Path("/ws"), {"task": ["rte", "MRPC", "RTE"]})
    assert multi.tasks == ["RTE", "MRPC"] and multi.task == "RTE"
    empty = parse_config(Path("/ws"), None)
    assert (empty.task, empty.model, empty.runtime.device) == ("MRPC", "embedded", "auto")


def test_load_config_file_errors(tmp_path):
    with pytest.raises(WorkspaceError, match="no theseus.yaml in .*theseus init"):
        load_config(tmp_path)
    (tmp_path / "theseus.yaml").write_text("replace: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)
    (tmp_path / "theseus.yaml").write_text("runtime:\n  precision: fp8\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert str(tmp_path / "theseus.yaml") in str(e.value) and "no, fp16, bf16" in str(e.value)
    (tmp_path / "theseus.yaml").write_text("data:\n  glue_dir: ../glue\n")
    assert load_config(tmp_path).glue_dir() == (tmp_path.parent / "glue").resolve()


# --------------------------------------------------------- through the CLI
@pytest.mark.parametrize("updates,command,message", [
    ({"modle": "x"}, ["status"], "unknown key 'modle'; accepted: benchmark, data, distill, evaluate"),
    ({"replace": {"epoch": 1}}, ["replace"], "replace: unknown key 'epoch'; accepted:"),
    ({"runtime": {"precision": "fp8"}}, ["finetune-teacher"], "accepted: no, fp16, bf16"),
    ({"finetune-teacher": {"epochs": "many"}}, ["evaluate"], "expected int, got 'many'"),
    ({"finetune-teacher": {"learning_rate": -1}}, ["finetune-teacher"], "below the minimum 0.0"),
    ({"task": "glu"}, ["status"], "unknown task 'glu'; available:"),
    ({"replace": {"scheduler": "cosine"}}, ["replace"],
     "unknown scheduler 'cosine'; available: anti-curriculum, constant, linear"),
    ({"replace": {"schedulers": {"linear": {"b": 7}}}}, ["replace"],
     "schedulers.linear.b: 7.0 is above the maximum 1.0"),
])
def test_cli_reports_config_errors(workspace, updates, command, message):
    set_yaml(workspace, updates)
    result = cli(*command, "--workspace", workspace, ok=False)
    assert result.exit_code == 2
    assert message in flat(result.stderr)
    assert str(workspace / "theseus.yaml") in flat(result.stderr)
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert not (workspace / "artifacts").exists() or not list((workspace / "artifacts").rglob("*"))


@pytest.mark.parametrize("args,message", [
    (["--precision", "fp8"], "--precision: invalid value 'fp8'; accepted: no, fp16, bf16"),
    (["--learning-rate", "-1"], "--learning-rate: -1.0 is below the minimum 0.0"),
    (["--max-train-samples", "0"], "--max-train-samples: 0 is below the minimum 1"),
    (["--device", "tpu"], "--device: invalid value 'tpu'; accepted: auto, cuda, mps, cpu"),
])
def test_cli_option_errors(workspace, args, message):
    result = cli("finetune-teacher", *args, "-w", workspace, ok=False)
    assert result.exit_code == 2, result.output
    assert message in flat(result.stderr)
    assert "Traceback" not in result.output
    assert versions(workspace, "finetune-teacher") == []


def test_click_type_errors(workspace):
    result = cli("finetune-teacher", "--epochs", "many", "-w", workspace, ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for '--epochs'" in result.output


def test_init_errors(tmp_path, workspace):
    result = cli("init", workspace, ok=False)
    assert result.exit_code == 2 and "already exists; use --force" in flat(result.stderr)
    result = cli("init", tmp_path / "x", "--task", "GLUEY", ok=False)
    assert result.exit_code == 2 and "unknown task 'GLUEY'" in flat(result.stderr)
    assert not (tmp_path / "x" / "theseus.yaml").exists()
    result = cli("init", tmp_path / "y", "--recipe", tmp_path / "missing", ok=False)
    assert result.exit_code == 2 and "no theseus.yaml there" in flat(result.stderr)


# -------------------------------------------------------------- precedence
def test_precedence_unit(workspace):
    set_yaml(workspace, {"finetune-teacher": {"epochs": 2}},
             remove=(("finetune-teacher", "weight_decay"),))
    cfg = load_config(workspace)
    assert cfg.stage_params("finetune-teacher").epochs == 2  # file
    assert cfg.stage_params("finetune-teacher", {"epochs": 1}).epochs == 1  # CLI wins
    assert cfg.stage_params("finetune-teacher", {"epochs": None}).epochs == 2  # CLI unset
    assert cfg.stage_params("finetune-teacher").weight_decay == 0.0  # default
    assert cfg.stage_params("finetune-teacher", {"weight_decay": 0.01}).weight_decay == 0.01
    # plugin arguments: defaults < file < --scheduler-arg
    set_yaml(workspace, {"replace": {"schedulers": {"linear": {"b": 0.1}}}},
             remove=(("replace", "schedulers"),))
    cfg = load_config(workspace)
    p = cfg.stage_params("replace", plugin_overrides={"scheduler": {"steps_to_one": 9}})
    assert p.schedulers["linear"] == {"steps_to_one": 9}
    set_yaml(workspace, {"replace": {"schedulers": {"linear": {"b": 0.1}}}})
    cfg = load_config(workspace)
    p = cfg.stage_params("replace", plugin_overrides={"scheduler": {"steps_to_one": 9}})
    assert p.schedulers["linear"] == {"b": 0.1, "steps_to_one": 9}
    p = cfg.stage_params("replace", plugin_overrides={"scheduler": {"b": 0.2}})
    assert p.schedulers["linear"] == {"b": 0.2}


def test_precedence_in_manifest(workspace):
    set_yaml(workspace, {"finetune-teacher": {"epochs": 2}},
             remove=(("finetune-teacher", "warmup_ratio"),))
    cli("finetune-teacher", "--epochs", "1", "--seed", "7", "-w", workspace)
    m = manifest(workspace, "finetune-teacher", "v1")
    assert m["params"]["epochs"] == 1  # CLI over file
    assert m["params"]["batch_size"] == 8  # file over default
    assert m["params"]["warmup_ratio"] == 0.0  # default (absent from file and CLI)
    assert m["config"]["runtime"]["seed"] == 7 and m["info"]["optimizer_steps"] == 6
    # the CLI value is not persisted: without it the file's value applies (a new version)
    cli("finetune-teacher", "-w", workspace)
    m2 = manifest(workspace, "finetune-teacher", "v2")
    assert m2["params"]["epochs"] == 2 and m2["info"]["optimizer_steps"] == 12
    assert m2["config"]["runtime"]["seed"] == 42
    assert read_yaml(workspace)["finetune-teacher"]["epochs"] == 2


# ----------------------------------------------------------------- template
def test_init_template_parses_and_is_commented(tmp_path, tiny_model_dir, glue_dir):
    cli("init", tmp_path / "ws", "--model", tiny_model_dir, "--glue-dir", glue_dir,
        "--task", "rte")
    text = (tmp_path / "ws" / "theseus.yaml").read_text()
    doc = yaml.safe_load(text)
    cfg = parse_config(tmp_path / "ws", doc)
    assert cfg.task == "RTE" and cfg.model == str(tiny_model_dir)
    assert cfg.glue_dir() == glue_dir.resolve()
    assert cfg.runtime.device == "auto" and set(cfg.stages_raw) == set(STAGES)
    # the file documents exactly the accepted keys
    assert set(doc) == {"model", "task", "data", "runtime", *STAGES}
    for name in STAGES:
        import dataclasses
        fields = {f.name for f in dataclasses.fields(registry.stage(name).Params)}
        assert set(doc[name]) == fields, name
    assert set(doc["replace"]["schedulers"]) == {"constant", "linear", "anti-curriculum"}
    # every key has a comment: values inline, sections/tables on the line above
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^(\s*)([\w-]+):(.*)$", line)
        assert m, line
        value = m.group(3).strip()
        above = lines[i - 1].lstrip() if i else ""
        if value and not value.startswith("#"):
            has_comment = " # " in value or above.startswith("#")
        else:
            has_comment = above.startswith("#") or m.group(2) in ("data", "runtime")
        assert has_comment, f"line {i + 1} has no comment: {line!r}"
    for key in ("epochs", "max_seq_length", "precision", "steps_to_one", "check_examples"):
        assert re.search(rf"^\s*{key}: .+  # \w", text, re.M), key


def test_init_writes_embedded_preset(tmp_path):
    cli("init", tmp_path / "ws")
    cfg = load_config(tmp_path / "ws")
    assert cfg.model == "embedded" and cfg.task == "MRPC"
    assert cfg.stage_params("replace").learning_rate == 3e-4
    assert cfg.stage_params("finetune-teacher").learning_rate is None  # by size: 1e-4
    assert cfg.stage_params("finetune-teacher").patience == 3
    for baseline in ("truncate", "distill", "pkd", "layerdrop"):  # the teacher's rule too
        assert cfg.stage_params(baseline).learning_rate is None


def _ramp(cfg, scheduler: str) -> dict:
    """The scheduler's ramp settings (b, k, fraction_to_one, steps_to_one), defaults filled."""
    import dataclasses
    defaults = {f.name: f.default for f in dataclasses.fields(registry.scheduler(scheduler).Params)}
    given = cfg.stage_params("replace").schedulers.get(scheduler) or {}
    return {k: given.get(k, defaults[k]) for k in ("b", "k", "fraction_to_one", "steps_to_one")}


def test_init_gives_anti_curriculum_the_curriculums_ramp(tmp_path):
    """Section 5.3: the anti-curriculum baseline is 1 - p_d with the curriculum's b and k.
    Both default to p_d = 1 at 65% of the stage's steps."""
    cli("init", tmp_path / "ws")
    cfg = load_config(tmp_path / "ws")
    assert _ramp(cfg, "anti-curriculum") == _ramp(cfg, "linear")
    assert registry.scheduler("linear").Params(**_ramp(cfg, "linear")).fraction_to_one == 0.65


def test_init_from_recipe(tmp_path, workspace):
    set_yaml(workspace, {"finetune-teacher": {"epochs": 5}})
    cli("init", tmp_path / "new", "--recipe", workspace, "--task", "STS-B")
    cfg = load_config(tmp_path / "new")
    assert cfg.task == "STS-B" and cfg.stage_params("finetune-teacher").epochs == 5
    assert cfg.glue_dir() == load_config(workspace).glue_dir()


RECIPES = sorted(Path(__file__).resolve().parents[1].glob("workspaces/*/theseus.yaml"))


@pytest.mark.skipif(not RECIPES, reason="no recipes in workspaces/")
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.parent.name)
def test_recipes_validate(recipe):
    cfg = load_config(recipe.parent)
    assert cfg.task in TASKS
    for stage in STAGES:
        cfg.stage_params(stage)
    assert _ramp(cfg, "anti-curriculum") == _ramp(cfg, "linear"), \
        "anti-curriculum must mirror the curriculum's ramp (section 5.3)"
