"""``theseus sweep``: a hyper-parameter search over one stage's parameters, on Optuna.

The paper (section 4.3) grid-searches the learning rate in {1e-5, 2e-5}, the
basic replacing rate b in {0.1, 0.3} and the optimizer steps until p = 1 in
{1000, 5000, 10000, 30000}, keeps the best dev checkpoint (early stopping) and
reports the median of 5 runs. A sweep does the same for any stage:

* a **trial** is one parameter combination run with every seed of ``--seeds``;
  each (combination, seed) is an ordinary :meth:`Pipeline.run` of the stage,
  so it is a versioned artifact with its lineage (upstream stages run or are
  reused as usual);
* the trial's **objective** is the median over its seeds of the stage's
  published dev ``score`` (the paper's per-task number, higher is better); the
  mean and the sample standard deviation are recorded too;
* the study is an Optuna study (direction maximize) in an RDB storage, by
  default ``sqlite:///<workspace>/artifacts/<task>/sweep/study.db``; its
  default name is derived from the stage, the task, the search space, the
  seeds, the sampler and the workspace's settings, so rerunning the same
  command resumes the same study.

Resume. A finished trial is COMPLETE in the study and is never run again. A
trial left RUNNING by a process that no longer runs (a SIGKILL, a power cut)
is marked FAIL and its combination runs again: on this host the process id is
checked at once; across hosts sharing one ``--storage``, Optuna's heartbeat
(every 60 s, stale after 10 min) does it. When a combination runs again, each
of its seeds whose artifact was already published (same pipeline fingerprint,
anywhere among the stage's versions) is reused, never retrained; an
interrupted seed resumes from the stage's own checkpoints.

Parallel sweeps: trials run one after the other in one process (each stage run
holds the stage's lock in its workspace). To spread a sweep, run the same
command on several machines, each in its own workspace, with one shared
``--storage`` (e.g. PostgreSQL): every worker takes combinations no other
worker finished or is running.

At the end a ``sweep`` artifact version is published at
``artifacts/<task>/sweep/vN/``: ``trials.json``, ``trials.md``, ``best.json``
and ``command.txt`` (the ``theseus`` command lines that reproduce the best
configuration). Its manifest lists every trial artifact (version, manifest
sha256) under ``trial_artifacts``; ``inputs`` holds the best configuration's
best-seed artifact, so that ``theseus verify`` checks its lineage (an
``inputs`` key names one version per stage).

Selection is on the workspace's ``data.selection`` split: ``dev`` as in the paper,
or ``holdout``, a fixed slice of the training set that every stage holds out of
training and keeps its best checkpoint on, so that dev stays an unbiased report
(``theseus evaluate`` scores dev).

Modules: :mod:`~theseus_cli.sweep.space` (the search space and its parsing),
:mod:`~theseus_cli.sweep.plan` (validating a sweep before any trial runs),
:mod:`~theseus_cli.sweep.study` (the Optuna study, stale and retried trials),
:mod:`~theseus_cli.sweep.trials` (running trials, :func:`run_sweep`) and
:mod:`~theseus_cli.sweep.report` (trials table, ``best.json``, the sweep artifact).
"""

from theseus_cli.sweep.plan import default_storage, plan_sweep
from theseus_cli.sweep.report import (
    TrialRecord,
    best_json,
    best_of,
    command_text,
    print_summary,
    publish_sweep,
    render_markdown,
    summarize,
    table_rows,
)
from theseus_cli.sweep.space import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    MAX_DUPLICATES,
    METRIC,
    SAMPLERS,
    SELECTIONS,
    STORAGE_FORMS,
    STUDY_DB,
    SWEEP_STAGE,
    ParamSpec,
    SweepPlan,
    accepted_names,
    command_line,
    parse_seeds,
    parse_spec,
    split_combo,
    split_param,
)
from theseus_cli.sweep.study import open_study
from theseus_cli.sweep.trials import SeedRun, SweepResult, run_combination, run_sweep
from theseus_cli.workspace.seeds import MAX_SEEDS

__all__ = [
    "GRACE_SECONDS", "HEARTBEAT_SECONDS", "MAX_DUPLICATES", "MAX_SEEDS", "METRIC", "SAMPLERS",
    "SELECTIONS", "STORAGE_FORMS", "STUDY_DB", "SWEEP_STAGE", "ParamSpec", "SeedRun",
    "SweepPlan", "SweepResult", "TrialRecord", "accepted_names", "best_json", "best_of",
    "command_line", "command_text", "default_storage", "open_study", "parse_seeds",
    "parse_spec", "plan_sweep", "print_summary", "publish_sweep", "render_markdown",
    "run_combination", "run_sweep", "split_combo", "split_param", "summarize", "table_rows",
]
