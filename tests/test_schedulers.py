"""Replacing-rate schedulers (paper section 3.3, eq. 6)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from theseus_builtin.schedulers import ConstantScheduler, LinearScheduler
from theseus_cli.errors import ConfigError


def const(**kw) -> ConstantScheduler:
    return ConstantScheduler(ConstantScheduler.Params(**kw))


def linear(**kw) -> LinearScheduler:
    return LinearScheduler(LinearScheduler.Params(**kw))


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


def test_linear_default_steps_to_one():
    s = linear()  # b=0.3, steps_to_one=1000 -> k = 0.0007
    assert s.k == pytest.approx(0.0007)
    assert s.rate(0) == pytest.approx(0.3)
    assert s.rate(500) == pytest.approx(0.65)
    assert s.rate(999) == pytest.approx(0.9993)
    assert s.rate(1000) == 1.0 and s.rate(10**6) == 1.0
    assert s.describe() == "p_d = min(1, 0.0007·t + 0.3), p=1 from step 1000"


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
    assert linear(b=1.0).rate(0) == 1.0
    assert linear(b=0.1, steps_to_one=30000).describe() == "p_d = min(1, 0.00003·t + 0.1), p=1 from step 30000"


def test_linear_monotone_in_unit_interval():
    s = linear(b=0.1, steps_to_one=30000)
    rates = [s.rate(t) for t in range(0, 31000, 97)]
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert rates == sorted(rates)


@pytest.mark.parametrize("kw, bad", [
    ({"k": 0.0}, "k=0.0"), ({"k": -0.001}, "-0.001"), ({"b": 1.5}, "1.5"),
    ({"steps_to_one": None}, "both"), ({"steps_to_one": 0}, "steps_to_one=0"),
])
def test_linear_validation(kw, bad):
    with pytest.raises(ConfigError, match=bad):
        linear(**kw)


def test_negative_step_rejected():
    with pytest.raises(ValueError):
        linear().rate(-1)


def test_plugin_modules_do_not_import_torch():
    code = ("import sys, theseus_builtin.schedulers, theseus_builtin.successors; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
