"""Plots written into artifacts (PNG, matplotlib's Agg backend, no display needed).

- :func:`training_curves`: a training stage's ``metrics.jsonl`` over optimizer steps:
  the replacing rate p(t) (``replace``: the scheduler's p_d, paper eq. 6), the training
  loss (each step faint, a running mean over it) and the dev score at each evaluation.
  The pipeline draws it for every stage that logged training steps (``curves.png``).
- :func:`method_chart`: score against measured speed-up and against parameters, one
  point per method of a task's method table (teacher, baselines, Theseus variants; the
  majority class as a line), drawn by the ``glue-table`` stage (``chart_TASK.png``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from theseus_cli.errors import PlotError
from theseus_cli.train.runlog import LOG_NAME

#: file name of the training curves in a stage's artifact
CURVES = "curves.png"


def _plot(draw):
    """Make a drawing function raise PlotError (naming the file) for whatever stops it:
    matplotlib missing or failing, the file not writable."""
    import functools

    @functools.wraps(draw)
    def guarded(*args, **kwargs):
        try:
            return draw(*args, **kwargs)
        except (ImportError, OSError, ValueError, RuntimeError) as e:
            path = Path(args[-1] if args else kwargs.get("path", "?")).name
            raise PlotError(f"could not draw {path}: {type(e).__name__}: {e}") from e

    return guarded


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` (a stage's ``metrics.jsonl``); [] when absent."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _running_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


@_plot
def training_curves(records: list[dict[str, Any]], title: str, path: Path) -> Path | None:
    """Draw p(t), the training loss and the dev score (or held-out: the eval records'
    ``split``) against optimizer steps.

    Args:
        records: ``metrics.jsonl`` rows: ``{"event": "train", "step", "loss", "p"?}``
            and ``{"event": "eval", "step", "dev_score", ...}``.
        title: e.g. ``"MRPC · replace"``.
        path: the PNG to write.

    Returns:
        ``path``, or None when there is no training step to draw.

    Raises:
        PlotError: matplotlib is missing or could not draw or write the file.
    """
    train = [r for r in records if r.get("event") == "train" and "loss" in r]
    evals = [r for r in records if r.get("event") == "eval" and "dev_score" in r]
    if not train:
        return None
    with_p = [r for r in train if r.get("p") is not None]
    panels = (["p"] if with_p else []) + ["loss"] + (["dev"] if evals else [])
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(7.0, 2.2 * len(panels) + 0.6),
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=False):
        if panel == "p":
            ax.plot([r["step"] for r in with_p], [r["p"] for r in with_p], color="tab:purple")
            ax.set_ylabel("replacing rate p")
            ax.set_ylim(-0.02, 1.05)
        elif panel == "loss":
            steps, loss = [r["step"] for r in train], [float(r["loss"]) for r in train]
            ax.plot(steps, loss, color="tab:blue", alpha=0.25, linewidth=0.8)
            window = max(1, len(loss) // 25)
            ax.plot(steps, _running_mean(loss, window), color="tab:blue",
                    label=f"running mean of {window} steps")
            ax.set_ylabel("training loss")
            ax.legend(loc="upper right", fontsize=8)
        else:
            ax.plot([r["step"] for r in evals], [100 * r["dev_score"] for r in evals],
                    marker="o", color="tab:green")
            ax.set_ylabel(f"{evals[-1].get('split', 'dev')} score")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@_plot
def method_chart(task: str, rows: list[dict[str, Any]], path: Path,
                 score_label: str = "dev score (median over seeds)") -> Path | None:
    """Score against speed-up and against parameters for a task's method rows.

    Args:
        task: GLUE task name (title).
        rows: :func:`theseus_builtin.stages.method_table.task_rows` output: each with
            ``method``, ``parameters`` (count) and ``score`` / ``speedup`` statistics
            (``median``, fractions for the score); the majority-class row has no
            parameters and is drawn as a horizontal line.
        path: the PNG to write.
        score_label: the y axis, after the task name.

    Returns:
        ``path``, or None when no row has both a score and a speed-up.

    Raises:
        PlotError: matplotlib is missing or could not draw or write the file.
    """
    points = [r for r in rows if r.get("parameters") and (r.get("score") or {}).get("median")
              is not None and (r.get("speedup") or {}).get("median") is not None]
    if not points:
        return None
    majority = next((r for r in rows if not r.get("parameters")
                     and (r.get("score") or {}).get("median") is not None), None)
    import textwrap

    labels = ["\n".join(textwrap.wrap(r["method"], 70)) for r in points]
    lines = sum(label.count("\n") + 1 for label in labels) + 1  # + the majority line
    legend_in = 0.16 * (lines + 1) / 2  # two columns
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.0 + legend_in), sharey=True)
    for i, (r, label) in enumerate(zip(points, labels, strict=False)):
        score = 100 * r["score"]["median"]
        marker = "*" if r["method"].startswith("teacher") else "o"
        left.scatter(r["speedup"]["median"], score, marker=marker, s=90, label=label,
                     color=f"C{i % 10}")
        right.scatter(r["parameters"] / 1e6, score, marker=marker, s=90, color=f"C{i % 10}")
    for ax in (left, right):
        if majority is not None:
            ax.axhline(100 * majority["score"]["median"], color="gray", linestyle="--",
                       linewidth=1, label="majority class" if ax is left else None)
        ax.grid(alpha=0.3)
    left.set_xlabel("measured speed-up over the teacher (×)")
    right.set_xlabel("parameters (millions)")
    left.set_ylabel(f"{task} {score_label}")
    fig.legend(loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.suptitle(f"{task}: score against speed-up and size")
    fig.tight_layout(rect=(0, (legend_in + 0.2) / (4.0 + legend_in), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_stage_curves(out_dir: Path, title: str) -> Path | None:
    """:func:`training_curves` of the ``metrics.jsonl`` in a stage's staging directory,
    written as ``curves.png`` beside it; None when the stage logged no training step.

    Raises:
        PlotError: matplotlib is missing or could not draw or write the file.
    """
    records = read_records(Path(out_dir) / LOG_NAME)
    return training_curves(records, title, Path(out_dir) / CURVES)
