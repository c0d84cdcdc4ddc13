"""One row per method and variant, seeds aggregated: the numbers ``evaluate`` reports.

A *variant* is everything that decides a successor except the seed: two
successor artifacts whose lineages have the same stages, params, model and data
settings but other ``runtime.seed`` values are seeds of one variant. Each
variant's cells give the median over its seeds (the paper's statistic,
section 4.3 / Table 2: median of 5 runs), and the JSON keeps mean, standard
deviation (sample, n − 1) and the number of seeds beside it.
"""

from __future__ import annotations

import statistics
from typing import Any

from theseus_cli.plugin.training import rising_at_end
from theseus_cli.store.artifacts import Artifact
from theseus_cli.workspace.seeds import stats, variant_key


def chain_seconds(store: Any, art: Artifact, exclude: str = "finetune-teacher") -> float:
    """Wall seconds of ``art``'s stage and the ancestors it needed, without ``exclude``
    (the teacher, shared by every method)."""
    m = art.manifest
    total = float((m.get("timings") or {}).get("seconds") or 0.0) if art.stage != exclude else 0.0
    for name, ref in (m.get("inputs") or {}).items():
        if "/" not in name and name != exclude:
            total += chain_seconds(store, store.get(art.task, name, ref["version"]), exclude)
    return total


#: evaluate's sizes of each model (``teacher_*``, ``successor_*``), not task metrics
SIZES = ("parameters", "layers", "embedding_parameters", "weights_mb")
#: evaluate's ``teacher_*`` metrics that are not task metrics
NOT_METRICS = ("teacher_score", *(f"teacher_{k}" for k in SIZES))


def size_cells(row: dict[str, Any], teacher_mb: float | None = None) -> tuple[str, ...]:
    """``("17.4M", "67%", "69.6", "17.5", "1.3×", "5.2×")``: a row's parameters, the word
    embedding's share of them, its fp32 weights file and its int8 ONNX file in MB (the
    row's newest export; "—" when never exported to int8), and how many times smaller each
    file is than the teacher's fp32 weights file (``teacher_mb``); "—" where unknown (the
    trivial row, older evaluations)."""
    total, emb, mb = row.get("parameters"), row.get("embedding"), row.get("weights_mb")
    int8 = row.get("int8_mb")
    if total is None:
        return "—", "—", "—", "—", "—", "—"

    def smaller(size: float | None) -> str:
        return "—" if not size or not teacher_mb else f"{teacher_mb / size:.1f}×"

    return (f"{total / 1e6:.1f}M", "—" if emb is None or not total else f"{100 * emb / total:.0f}%",
            "—" if mb is None else f"{mb:.1f}", "—" if not int8 else f"{int8:.1f}",
            smaller(mb), smaller(int8))


def task_rows(store: Any, evaluations: list[Artifact],
              onnx: dict[str, dict[str, float]] | None = None) -> list[dict[str, Any]]:
    """Rows of one task's method table: the teacher, each variant (seeds aggregated)
    and the majority-class baseline.

    Each row: ``method``, ``layers``, ``parameters``, ``metrics`` (name -> stats),
    ``score`` (stats), ``retention`` (stats, %), ``speedup`` (stats),
    ``seconds`` (stats: training wall time of the method), ``artifacts``, and
    ``int8_mb``/``onnx_mb``: the median over the row's seeds of its exported files' MB
    where ``onnx`` (model label -> an export's metrics ``onnx_mb``, ``onnx_int8_mb``)
    has any of its models, else None.
    """
    onnx = onnx or {}
    groups: dict[str, list[Artifact]] = {}
    for ev in sorted(evaluations, key=lambda a: a.version):
        successor = store.get(ev.task, *_successor_ref(ev))
        swapped = ev.manifest.get("params", {}).get("modules")  # evaluate --modules
        key = variant_key(store, successor) + (f" modules={swapped}" if swapped else "")
        groups.setdefault(key, []).append(ev)
    if not evaluations:
        return []
    metric_names = [k.removeprefix("teacher_") for k in evaluations[0].manifest["metrics"]
                    if k.startswith("teacher_") and k not in NOT_METRICS]
    rows = [_teacher_row(store, evaluations, metric_names)]
    rows[0].update(_onnx_sizes(onnx, [f"{evaluations[0].task}/finetune-teacher/{v}"
                                      for v in rows[0]["artifacts"]]))
    labels: dict[str, int] = {}
    for key, evs in groups.items():
        latest_per_seed = {}
        for ev in evs:  # one sample per seed: the newest evaluation of that seed's successor
            latest_per_seed[_seed(store.get(ev.task, *_successor_ref(ev)))] = ev
        evs = list(latest_per_seed.values())
        ms = [ev.manifest["metrics"] for ev in evs]
        label = evs[-1].manifest.get("info", {}).get("method") or _successor_ref(evs[-1])[0]
        recipe = evs[-1].manifest.get("info", {}).get("recipe") or label
        labels.setdefault(label, []).append(len(rows))
        rows.append({
            "method": label, "recipe": recipe, "variant": key, "layers": ms[-1].get("successor_layers"),
            "parameters": ms[-1].get("successor_parameters"),
            "embedding": ms[-1].get("successor_embedding_parameters"),
            "weights_mb": ms[-1].get("successor_weights_mb"),
            "metrics": {n: stats([m.get(f"successor_{n}") for m in ms]) for n in metric_names},
            "score": stats([m.get("successor_score") for m in ms]),
            "retention": stats([m.get("retention") for m in ms]),
            "speedup": stats([m.get("speedup") for m in ms]),
            "seconds": stats([chain_seconds(store, store.get(ev.task, *_successor_ref(ev)))
                              for ev in evs]),
            "seeds": sorted({_seed(store.get(ev.task, *_successor_ref(ev))) for ev in evs},
                            key=str),
            "warnings": sorted({w for ev in evs for w in ev.manifest.get("info", {}).get("warnings", [])}
                               | set(undertrained_warnings(store, evs))),
            "artifacts": [ev.label for ev in evs],
            "successors": [store.get(ev.task, *_successor_ref(ev)).label for ev in evs]})
        rows[-1].update(_onnx_sizes(onnx, rows[-1]["successors"]))
    for indices in labels.values():  # same method name: say which settings differ
        if len(indices) > 1:
            _disambiguate(store, [rows[i] for i in indices])
    rows[0]["warnings"] = [*rows[0]["warnings"], *beaten_teacher_warnings(rows[0], rows[1:])]
    m = evaluations[-1].manifest["metrics"]
    trivial = evaluations[-1].manifest.get("info", {}).get("trivial", "majority class")
    rows.append({"method": f"{trivial} (training set's)", "layers": None,
                 "parameters": None,
                 "metrics": {n: stats([m.get(f"majority_{n}")]) for n in metric_names},
                 "score": stats([m.get("majority_score")]), "retention": stats([]),
                 "speedup": stats([]), "seconds": stats([]), "seeds": [], "artifacts": []})
    return rows


def undertrained_warnings(store: Any, evaluations: list[Artifact]) -> list[str]:
    """One warning per evaluated successor whose own training stage ran to its maximum
    with its best dev score at the last evaluation, still rising (:func:`rising_at_end`):
    the row is probably undertrained, its comparison with the others unfair to it."""
    out = []
    for ev in evaluations:
        art = store.get(ev.task, *_successor_ref(ev))
        info = art.manifest.get("info") or {}
        if rising_at_end(info.get("stop_reason"), info.get("best_step"), info.get("evaluations")):
            epochs = (art.manifest.get("params") or {}).get("epochs")
            more = f"--epochs {2 * epochs}" if epochs else "more --epochs"
            out.append(f"undertrained: {art.label} had its best dev score at its last "
                       f"evaluation (epoch {info.get('best_epoch')}, the maximum), still "
                       f"rising; try {art.stage} {more} or a higher --learning-rate")
    return out


def _onnx_sizes(onnx: dict[str, dict[str, float]], models: list[str]) -> dict[str, Any]:
    """``{"onnx_mb": ..., "int8_mb": ...}``: medians over ``models`` that were exported."""
    out = {}
    for key, metric in (("onnx_mb", "onnx_mb"), ("int8_mb", "onnx_int8_mb")):
        sizes = [onnx[m][metric] for m in models if m in onnx and onnx[m].get(metric)]
        out[key] = statistics.median(sizes) if sizes else None
    return out


#: lineage params that never tell variants apart (seeds, checkpointing, evaluation batch)
_QUIET = {"save_every", "save_every_minutes", "max_nonfinite_steps", "eval_batch_size"}


def lineage_params(store: Any, art: Artifact) -> dict[str, Any]:
    """``{"<stage>.<param>": value}`` over ``art`` and its ancestors (the teacher excluded);
    a null param that the stage resolved itself (``learning_rate`` by hidden size) shows the
    value its ``info`` records."""
    info = art.manifest.get("info") or {}
    out = {f"{art.stage}.{k}": info.get(k) if v is None else v
           for k, v in (art.manifest.get("params") or {}).items()
           if k not in _QUIET and not isinstance(v, dict)}
    for name, ref in (art.manifest.get("inputs") or {}).items():
        if "/" not in name and name != "finetune-teacher":
            out.update(lineage_params(store, store.get(art.task, name, ref["version"])))
    return out


def _disambiguate(store: Any, rows: list[dict[str, Any]]) -> None:
    """Append the lineage params that differ between rows of the same method name,
    e.g. ``theseus 3L, ... (replace.learning_rate=0.0003, finetune-successor.learning_rate=0.0001)``."""
    params = []
    for r in rows:
        task, stage, version = r["successors"][-1].split("/")
        params.append(lineage_params(store, store.get(task, stage, version)))
    keys = sorted({k for p in params for k in p if len({str(q.get(k)) for q in params}) > 1})
    for r, p in zip(rows, params, strict=False):
        shown = ", ".join(f"{k}={p.get(k)}" for k in keys)
        r["method"] += f" ({shown or 'variant ' + r['variant'][:6]})"


def _seed(art: Artifact) -> int | None:
    return (art.manifest.get("config") or {}).get("runtime", {}).get("seed")


def _successor_ref(ev: Artifact) -> tuple[str, str]:
    """(stage, version) of the successor an evaluation scored."""
    stage = (ev.manifest.get("params") or {}).get("successor", "finetune-successor")
    return stage, ev.manifest["inputs"][stage]["version"]


def _teacher_row(store: Any, evaluations: list[Artifact], names: list[str]) -> dict[str, Any]:
    by_teacher: dict[str, dict] = {}
    for ev in evaluations:
        m = ev.manifest["metrics"]
        by_teacher[ev.manifest.get("info", {}).get("teacher_artifact", "?")] = (m, ev)
    items = list(by_teacher.values())
    ms = [m for m, _ in items]
    seconds, warnings = [], []  # warnings: the teacher's own (weak, undertrained)
    for _, ev in items:
        teacher = store.lineage(ev, "finetune-teacher")
        seconds.append(float(teacher.manifest.get("timings", {}).get("seconds") or 0.0))
        warnings += teacher.manifest.get("info", {}).get("warnings") or []
    return {"method": "teacher (fine-tuned predecessor)", "layers": ms[-1].get("teacher_layers"),
            "warnings": list(dict.fromkeys(warnings)),
            "parameters": ms[-1].get("teacher_parameters"),
            "embedding": ms[-1].get("teacher_embedding_parameters"),
            "weights_mb": ms[-1].get("teacher_weights_mb"),
            "metrics": {n: stats([m.get(f"teacher_{n}") for m in ms]) for n in names},
            "score": stats([m.get("teacher_score") for m in ms]),
            "retention": stats([100.0] * len(ms)), "speedup": stats([1.0] * len(ms)),
            "seconds": stats(seconds), "seeds": [], "artifacts": list(by_teacher)}


def beaten_teacher_warnings(teacher: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """A warning for each successor row whose median score beats the teacher's by more than
    its seeds' spread (the sample std; a point, 0.01, with one seed): a successor is
    distilled from the teacher, so a teacher it beats is probably undertrained."""
    t = teacher["score"]["median"]
    out = []
    for r in rows:
        sc = r["score"]
        if t is None or sc["median"] is None or not r.get("parameters"):
            continue
        spread = sc["std"] if sc["n"] and sc["n"] > 1 and sc["std"] else 0.01
        if sc["median"] - t > spread:
            out.append(f"its successor \"{r['method']}\" scores {100 * (sc['median'] - t):.2f} "
                       f"above it (more than the seeds' spread, {100 * spread:.2f}): the teacher "
                       "is probably undertrained; try finetune-teacher --epochs with a larger "
                       "value or a higher --learning-rate, then rerun the successors")
    return out


def spread_cell(score: dict[str, Any]) -> str:
    """``mean ± std (n)`` of a row's score over its seeds (%), ``1 seed`` for one (no
    spread to show), ``—`` for none."""
    if score["mean"] is None:
        return "—"
    if (score["n"] or 0) < 2:
        return "1 seed"
    return f"{100 * score['mean']:.2f} ± {100 * score['std']:.2f} ({score['n']})"


def legend(rows: list[dict[str, Any]]) -> list[str]:
    """Lines under a table: each method whose full recipe says more than its short label
    (``theseus 3L + KD α=0.5: theseus 3L, linear b=0.3 fraction_to_one=0.65 + KD ...``)."""
    shown = [(r["method"], r["recipe"]) for r in rows
             if r.get("recipe") and r["recipe"] != r["method"]]
    return ["", "Recipes:", *(f"- {m}: {rec}" for m, rec in shown)] if shown else []


def _num(s: dict, scale: float = 100.0, digits: int = 2) -> str:
    return "—" if s["median"] is None else f"{scale * s['median']:.{digits}f}"


def render_task(task: str, rows: list[dict[str, Any]]) -> str:
    """One task's method table in Markdown (medians; mean ± std and seeds beside the score)."""
    if not rows:
        return ""
    names = list(rows[0]["metrics"])
    head = ["method", "layers", "parameters", "embedding", "fp32 MB", "int8 MB", "× smaller",
            "× smaller (int8)", *names,
            "score", "mean ± std (seeds)", "retention", "speed-up", "train time"]
    lines = [f"### {task} dev", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        sc = r["score"]
        spread = spread_cell(sc)
        cells = [r["method"], "—" if r["layers"] is None else str(r["layers"]),
                 *size_cells(r, rows[0].get("weights_mb")),
                 *(_num(r["metrics"][n]) for n in names), _num(sc), spread,
                 "—" if r["retention"]["median"] is None else f"{r['retention']['median']:.1f}%",
                 "—" if r["speedup"]["median"] is None else f"{r['speedup']['median']:.2f}×",
                 "—" if not r["seconds"]["median"] else f"{r['seconds']['median']:.0f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Medians over seeds (the paper's statistic); score = the paper's per-task dev "
                  "number; embedding = the word embedding's share of the parameters; fp32 MB = the "
                  "weights file, int8 MB = the newest int8 ONNX export (theseus export "
                  "--format onnx,onnx-int8; — when none), × smaller = the teacher's fp32 "
                  "weights file over each; train time = "
                  "wall seconds of the method's own stages (the teacher's for the teacher row)."]
    lines += legend(rows)
    warned = [f"- {r['method']}: {w}" for r in rows for w in r.get("warnings", [])]
    if warned:
        lines += ["", "Warnings:", *warned]
    return "\n".join(lines) + "\n"
