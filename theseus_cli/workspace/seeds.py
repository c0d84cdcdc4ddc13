"""Several seeds of one run: which runs are seeds of one variant, and their statistics.

``--seeds 3`` runs a stage (and what it needs upstream) with seeds base, base+1,
base+2 (base = ``runtime.seed``); ``--seeds 1,5,9`` with those. Each seed is
its own artifact version with its own lineage (the seed is part of the
fingerprint; a run prefers inputs made with its own seed). Tables report the
median over seeds (the paper's statistic, section 4.3), mean ± standard
deviation and the number of seeds.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from typing import Any

from theseus_cli.errors import ConfigError
from theseus_cli.store.artifacts import Artifact
from theseus_cli.workspace.run_facts import comparable_data

MAX_SEED = 2**32 - 1


#: the most seeds one command runs (a stage command's or a sweep's ``--seeds``)
MAX_SEEDS = 100


def parse_seeds(text: str, base: int) -> list[int]:
    """``"3"`` -> [base, base+1, base+2]; ``"1,5,9"`` -> [1, 5, 9].

    Raises:
        ConfigError: not a count from 1 to :data:`MAX_SEEDS` or a list of at most that many
            integers in [0, 2^32 − 1], or a repeat.
    """
    text = text.strip()
    if text.isdigit() and int(text) > MAX_SEEDS:  # refused before that many seeds are listed
        raise ConfigError(f"--seeds {text}: the number of seeds must be 1 to {MAX_SEEDS}")
    try:
        if "," in text:
            seeds = [int(x) for x in text.split(",") if x.strip()]
        else:
            count = int(text)
            if count < 1:
                raise ConfigError(f"--seeds {text}: the number of seeds must be at least 1")
            seeds = [base + i for i in range(count)]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected a number of seeds (e.g. 3) or a list "
                          "(e.g. 1,2,3)") from None
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise ConfigError(f"--seeds: seed {bad[0]} is outside [0, {MAX_SEED}]")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text}: a seed is repeated")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds: {len(seeds)} seeds listed; at most {MAX_SEEDS}")
    return seeds


#: params that never change a result (checkpointing, evaluation batch size)
_NEUTRAL = {"save_every", "save_every_minutes", "max_nonfinite_steps", "eval_batch_size"}


def variant_key(store: Any, art: Artifact) -> str:
    """A hash of ``art``'s lineage without the seed (see the module docstring)."""
    m = art.manifest
    runtime = dict((m.get("config") or {}).get("runtime") or {})
    runtime.pop("seed", None)

    data = comparable_data((m.get("config") or {}).get("data") or {})
    config = {**(m.get("config") or {}), "runtime": runtime, "data": data}  # where data lives: not
    parents = []
    for name, ref in sorted((m.get("inputs") or {}).items()):
        if "/" in name:
            continue
        parents.append(variant_key(store, store.get(art.task, name, ref["version"])))
    doc = {"stage": art.stage, "params": {k: v for k, v in (m.get("params") or {}).items()
                                          if k not in _NEUTRAL},
           "config": config, "parents": parents}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def stats(values: list[float | None]) -> dict[str, Any]:
    """``{"median", "mean", "std", "n", "values"}`` over the finite values (None skipped)."""
    xs = [v for v in values if v is not None and v == v]
    if not xs:
        return {"median": None, "mean": None, "std": None, "n": 0, "values": values}
    return {"median": statistics.median(xs), "mean": statistics.fmean(xs),
            "std": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs), "values": values}


