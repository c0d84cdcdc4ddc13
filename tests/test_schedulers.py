"""Replacing-rate schedulers (paper section 3.3, eq. 6; anti-curriculum: section 5.3)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import cli, manifest

from theseus_builtin.schedulers.ramps import (
    AntiCurriculumScheduler,
    ConstantScheduler,
    LinearScheduler,
)
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import params as P


def const(**kw) -> ConstantScheduler:
    return ConstantScheduler(ConstantScheduler.Params(**kw))


def linear(**kw) -> LinearScheduler:
    return LinearScheduler(LinearScheduler.Params(**kw))


def anti(**kw) -> AntiCurriculumScheduler:
    return AntiCurriculumScheduler(AntiCurriculumScheduler.Params(**kw))


def test_constant_defaults_and_switch():
    s = const()
    assert [s.rate(t) for t in (0, 1, 10**6)] == [0.5, 0.5, 0.5]
    s = const(p=0.7, replacing_steps=100)
    assert s.rate(0) == 0.7 and s.rate(99) == 0.7
    assert s.rate(100) == 1.0 and s.rate(5000) == 1.0
    assert s.describe() == "p = 0.7, p=1 from step 100"
    assert const(p=0.0, replacing_steps=0).rate(0) == 1.0


@pytest.mark.parametrize("kw, bad", [({"p": 1.2}, "1.2"), ({"p": -0.1}, "-0.1"),
                                     ({"replacing_steps": -3}, "-3")])
def test_constant_validation(kw, bad):
    with pytest.raises(ConfigError, match=bad):
        const(**kw)


def test_linear_steps_to_one():
    s = linear(steps_to_one=1000)  # b=0.3 -> k = 0.0007
    assert s.k == pytest.approx(0.0007)
    assert s.rate(0) == pytest.approx(0.3)
    assert s.rate(500) == pytest.approx(0.65)
    assert s.rate(999) == pytest.approx(0.9993)
    assert s.rate(1000) == 1.0 and s.rate(10**6) == 1.0
    assert s.describe() == "p_d = min(1, 0.0007·t + 0.3), p=1 from step 1000"


@pytest.mark.parametrize("total", [460, 11_280])
def test_linear_default_reaches_one_at_65_percent_of_any_run(total):
    """No slope set: p = 1 at 65% of the stage's steps, on a small and a large dataset."""
    s = linear()
    assert s.params.fraction_to_one == 0.65 and s.params.steps_to_one is None
    s.bind(total)
    assert s.step_at_one == round(0.65 * total)
    assert s.rate(s.step_at_one - 1) < 1.0 and s.rate(s.step_at_one) == 1.0
    assert s.warnings(total) == []
    assert s.describe().endswith(f"(65% of {total} steps)")


def test_linear_explicit_k_overrides_steps_to_one():
    s = linear(b=0.1, k=0.0006, steps_to_one=5)
    assert s.rate(0) == pytest.approx(0.1)
    assert s.rate(1000) == pytest.approx(0.7)
    assert s.rate(1499) == pytest.approx(0.9994)
    assert s.rate(1500) == 1.0  # min(1, ·) clipping
    assert s.rate(3000) == 1.0
    assert s.step_at_one == 1500
    assert "p=1 from step 1500" in s.describe()
    assert linear(b=0.5, k=0.3).rate(2) == 1.0  # 0.6 + 0.5 clipped to 1
    assert linear(b=1.0, steps_to_one=1000).rate(0) == 1.0
    assert linear(b=0.1, steps_to_one=30000).describe() == \
        "p_d = min(1, 0.00003·t + 0.1), p=1 from step 30000"


def test_linear_monotone_in_unit_interval():
    s = linear(b=0.1, steps_to_one=30000)
    rates = [s.rate(t) for t in range(0, 31000, 97)]
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert rates == sorted(rates)


@pytest.mark.parametrize("kw, bad", [
    ({"k": 0.0}, "k=0.0"), ({"k": -0.001}, "-0.001"), ({"b": 1.5}, "1.5"),
    ({"fraction_to_one": 1.5}, "fraction_to_one=1.5"), ({"steps_to_one": 0}, "steps_to_one=0"),
])
def test_linear_validation(kw, bad):
    with pytest.raises(ConfigError, match=bad):
        linear(**kw)


# ------------------------------------------------------------ fraction_to_one


def test_fraction_to_one_resolved_by_bind():
    s = linear(b=0.3, fraction_to_one=0.6)
    s.bind(500)  # the stage's planned optimizer steps -> p = 1 from step round(0.6 * 500) = 300
    assert s.step_at_one == 300
    assert s.rate(0) == pytest.approx(0.3)
    assert s.rate(150) == pytest.approx(0.3 + 0.7 * 150 / 300)
    assert s.rate(299) < 1.0
    assert s.rate(300) == 1.0 and s.rate(10**6) == 1.0
    assert s.describe() == "p_d = min(1, 0.002333·t + 0.3), p=1 from step 300 (60% of 500 steps)"


@pytest.mark.parametrize("fraction, total, expected", [
    (1.0, 7, 7), (0.5, 6, 3), (0.26, 10, 3), (0.24, 10, 2), (0.001, 10, 1), (0.5, 0, 1)])
def test_fraction_rounding(fraction, total, expected):
    s = linear(fraction_to_one=fraction)
    s.bind(total)  # steps_to_one = max(1, round(fraction * total))
    assert s.step_at_one == expected
    assert s.rate(expected - 1) < 1.0 and s.rate(expected) == 1.0


def test_precedence_k_over_fraction_over_steps_to_one():
    s = linear(b=0.1, k=0.0006, fraction_to_one=0.5, steps_to_one=10)
    assert s.rate(0) == pytest.approx(0.1)  # k needs no bind
    s.bind(100)
    assert s.k == pytest.approx(0.0006) and s.step_at_one == 1500
    assert s.rate(1000) == pytest.approx(0.7)
    assert "%" not in s.describe()
    s = linear(b=0.1, fraction_to_one=0.5, steps_to_one=10)
    s.bind(100)
    assert s.step_at_one == 50 and s.k == pytest.approx(0.9 / 50)


def test_written_steps_to_one_keeps_its_ramp():
    """A workspace written before the fraction default names steps_to_one: it keeps it."""
    p = LinearScheduler.Params(steps_to_one=1000)
    assert (p.b, p.k, p.fraction_to_one, p.steps_to_one) == (0.3, None, None, 1000)
    s = linear(steps_to_one=1000)
    s.bind(50)  # ignored without fraction_to_one
    assert s.step_at_one == 1000


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -1, float("nan")])
@pytest.mark.parametrize("make", [linear, anti])
def test_fraction_validation_names_value_and_range(make, bad):
    with pytest.raises(ConfigError) as exc:
        make(fraction_to_one=bad)
    assert f"fraction_to_one={bad!r}" in str(exc.value)
    assert "(0, 1]" in str(exc.value)


def test_fraction_validation_through_params_build():
    with pytest.raises(ConfigError, match=r"fraction_to_one=1.5 is outside \(0, 1\]"):
        P.build(LinearScheduler.Params, {"fraction_to_one": "1.5"}, "scheduler linear")
    built = P.build(AntiCurriculumScheduler.Params, {"fraction_to_one": 0.5},
                    "scheduler anti-curriculum")
    assert built.fraction_to_one == 0.5


@pytest.mark.parametrize("make", [linear, anti])
def test_rate_before_bind_raises(make):
    s = make(fraction_to_one=0.6)
    with pytest.raises(RuntimeError, match="bind"):
        s.rate(0)
    assert "60% of the stage's optimizer steps" in s.describe()  # describe still works
    with pytest.raises(ValueError):
        s.bind(-1)


# ------------------------------------------------------------ anti-curriculum


@pytest.mark.parametrize("kw", [{}, {"b": 0.1, "steps_to_one": 30}, {"b": 0.3, "steps_to_one": 7},
                                {"b": 0.0, "steps_to_one": 1}, {"b": 1.0},
                                {"b": 0.1, "k": 0.05}, {"b": 0.3, "fraction_to_one": 0.4}])
def test_anti_curriculum_is_one_minus_linear(kw):
    lin, ant = linear(**kw), anti(**kw)
    lin.bind(100)
    ant.bind(100)
    steps = range(0, 1200)
    rates = [ant.rate(t) for t in steps]
    assert rates == [1.0 - lin.rate(t) for t in steps]
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))  # non-increasing
    assert ant.rate(0) == pytest.approx(1.0 - kw.get("b", 0.3))
    assert ant.rate(lin.step_at_one) == 0.0 and ant.step_at_one == lin.step_at_one


def test_anti_curriculum_describe_and_validation():
    s = anti(b=0.3, fraction_to_one=0.6)
    s.bind(500)
    assert s.describe() == "p = 1 − min(1, 0.002333·t + 0.3), p=0 from step 300 (60% of 500 steps)"
    assert anti(steps_to_one=1000).describe() == "p = 1 − min(1, 0.0007·t + 0.3), p=0 from step 1000"
    with pytest.raises(ConfigError, match="anti-curriculum scheduler: b=1.5"):
        anti(b=1.5)
    with pytest.raises(ConfigError, match="k=-0.1"):
        anti(k=-0.1)


def test_replace_fraction_to_one_through_cli(workspace):
    cli("replace", "--scheduler-arg", "fraction_to_one=0.5", "-w", workspace)
    m = manifest(workspace, "replace")
    info = m["info"]
    total = info["optimizer_steps"]
    expected = max(1, round(0.5 * total))
    assert info["scheduler"]["name"] == "linear"
    assert info["scheduler"]["params"]["fraction_to_one"] == 0.5
    assert f"p=1 from step {expected} (50% of {total} steps)" in info["scheduler"]["formula"]
    log = [json.loads(line) for line in
           (workspace / "artifacts/MRPC/replace/v1/metrics.jsonl").read_text().splitlines()]
    train = [r for r in log if r["event"] == "train"]
    assert len(train) == total
    # a "train" record's step counts steps done; its p is that of 0-based step (step - 1)
    p_by_step = {r["step"] - 1: r["p"] for r in train}
    assert all(p_by_step[t] < 1.0 for t in range(expected))
    assert all(p_by_step[t] == 1.0 for t in range(expected, total))
    assert p_by_step[0] == pytest.approx(0.3)


def test_negative_step_rejected():
    with pytest.raises(ValueError):
        linear().rate(-1)


def test_plugin_modules_do_not_import_torch():
    code = ("import sys, theseus_builtin.schedulers.ramps, theseus_builtin.successors.copy_layers; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
