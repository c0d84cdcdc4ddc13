"""The stage contract (entry-point group ``theseus.stages``): a stage reads input
artifacts and writes one new artifact version; its context gives it data, training and
models (:class:`StageContext`), its ``check`` sees the configuration before any work."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from theseus_cli.plugin.base import Plugin
from theseus_cli.plugin.training import TrainOutcome


@dataclass
class StageResult:
    """What a stage returns; it goes into the artifact's manifest.

    Attributes:
        metrics: flat ``name -> number`` (GLUE metric names, e.g. ``f1``,
            ``accuracy``, ``pearson``); shown by ``theseus status``.
        info: anything else worth recording (layer counts, parameter counts).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class StageServices(ABC):
    """What the core does for a stage, reached through its :class:`StageContext`.

    A stage plugin never imports theseus internals: the context's methods
    (:meth:`StageContext.dataset`, :meth:`StageContext.train`, ...) call these with the
    context itself. theseus supplies the implementation (``theseus_cli.workspace``);
    tests may supply another. Every method may raise a ``TheseusError`` subclass.
    """

    @abstractmethod
    def store(self, ctx: StageContext) -> Any:
        """The workspace's artifact store (``lineage``, ``ancestors``, ``get``, ``versions``)."""

    @abstractmethod
    def task_definition(self, ctx: StageContext) -> Any:
        """The task's definition: ``name``, ``num_labels``, ``is_regression``, ``metrics``."""

    @abstractmethod
    def load_model(self, ctx: StageContext, artifact: Any) -> tuple[Any, Any]:
        """``(model, tokenizer)`` saved in ``artifact``'s ``model/``."""

    @abstractmethod
    def load_predecessor(self, ctx: StageContext, fine_tuned: bool = False) -> tuple[Any, Any]:
        """The workspace's predecessor: pretrained with a new head for the task, or (with
        ``fine_tuned``) as already fine-tuned on it, its labels matched to the task's."""

    @abstractmethod
    def save_model(self, ctx: StageContext, model: Any, tokenizer: Any) -> None:
        """Write ``model`` and ``tokenizer`` into ``ctx.out_dir / "model"`` (main process)."""

    @abstractmethod
    def dataset(self, ctx: StageContext, split: str, tokenizer: Any) -> Any:
        """A tokenised split of the task (see :meth:`StageContext.dataset`)."""

    @abstractmethod
    def train(self, ctx: StageContext, model: Any, tokenizer: Any, train_ds: Any,
              dev_ds: Any, **options: Any) -> TrainOutcome:
        """The shared training loop (see :meth:`StageContext.train`)."""

    @abstractmethod
    def distillation(self, ctx: StageContext, teacher: Any, train_ds: Any,
                     tokenizer: Any) -> tuple[Any, Any, dict[str, Any]]:
        """Vanilla KD for a stage whose params mix in :class:`DistillParams`
        (see :meth:`StageContext.distillation`)."""

    @abstractmethod
    def evaluate(self, ctx: StageContext, model: Any, tokenizer: Any,
                 dataset: Any) -> dict[str, float]:
        """The task's metrics of ``model`` on a tokenised ``dataset``."""

    @abstractmethod
    def model_size(self, model: Any) -> dict[str, Any]:
        """``{"layers": L, "parameters": {"total": ..., ...}}`` of a model."""


@dataclass
class StageContext:
    """Everything a stage's :meth:`Stage.run` may use.

    Attributes:
        config: the resolved workspace configuration (``model``, ``data``, ``runtime``,
            ``root``); read it, never change it.
        task: the task's name as its benchmark spells it, e.g. ``"MRPC"``.
        params: the stage's resolved ``Params`` instance (defaults < file < CLI).
        inputs: upstream stage name -> the complete artifact version used (``name``,
            ``label``, ``manifest``, ``file(relative)``).
        out_dir: staging directory; every file written here is published
            atomically as the new version when ``run`` returns.
        runtime: the shared device/precision/process runtime (``device``, ``seed``,
            ``is_main_process``, ``process_index``, ``unwrap(model)``).
        log: JSON-lines metrics log and rich progress for this run (``info(text)``).
        services: what the core does for the stage (data, training, models); use the
            methods below rather than calling it directly.
        checkpoints: resumable checkpoints of this run; :meth:`train` uses them
            (None: no checkpointing).
        plugins: the plugins the params select, built with their resolved params,
            keyed by selector: ``plugins["scheduler"]`` (a ``Scheduler``),
            ``plugins["successor"]`` (a ``SuccessorBuilder``).
        stage: the name of the stage being run.
    """

    config: Any
    task: str
    params: Any
    inputs: dict[str, Any]
    out_dir: Path
    runtime: Any
    log: Any
    services: StageServices
    checkpoints: Any = None
    plugins: dict[str, Any] = field(default_factory=dict)
    stage: str = ""

    @property
    def store(self) -> Any:
        """Read access to the workspace's published artifacts (lineage, other versions)."""
        return self.services.store(self)

    @property
    def task_definition(self) -> Any:
        """The task's definition (``name``, ``num_labels``, ``is_regression``, ``metrics``)."""
        return self.services.task_definition(self)

    def lineage(self, artifact: Any, stage: str) -> Any:
        """The version of ``stage`` in ``artifact``'s lineage (e.g. its teacher).

        Raises:
            ArtifactError: none there.
        """
        return self.store.lineage(artifact, stage)

    def load_model(self, artifact: Any) -> tuple[Any, Any]:
        """``(model, tokenizer)`` saved in ``artifact`` (stock, or restructured by a
        successor builder), in eval mode on the CPU.

        Raises:
            ModelSourceError: it cannot be read.
        """
        return self.services.load_model(self, artifact)

    def load_predecessor(self, fine_tuned: bool = False) -> tuple[Any, Any]:
        """The workspace's pretrained predecessor with a new head for this task; with
        ``fine_tuned``, the predecessor as already fine-tuned on the task (its head kept, its
        classes matched to the task's by name and reordered when only the order differs).

        Raises:
            ModelSourceError: the model cannot be found or read, or a tensor is missing.
            ConfigError: ``fine_tuned`` and its classes are not the task's.
        """
        return self.services.load_predecessor(self, fine_tuned)

    def save_model(self, model: Any, tokenizer: Any) -> None:
        """Write the model into this version (``model/``), on the main process only."""
        self.services.save_model(self, model, tokenizer)

    def dataset(self, split: str, tokenizer: Any) -> Any:
        """The task's ``split`` tokenised by ``tokenizer``: a ``datasets.Dataset`` with
        ``input_ids`` (and the tokenizer's other inputs) and ``labels``.

        Args:
            split: ``"train"`` (capped by ``data.max_train_samples``), ``"selection"``
                (the split checkpoints are selected on: dev, or a held-out part of train),
                ``"dev"`` or ``"test"``.

        Raises:
            DataError: the split is missing or malformed (file and line named).
        """
        return self.services.dataset(self, split, tokenizer)

    def train(self, model: Any, tokenizer: Any, train_ds: Any, dev_ds: Any,
              **options: Any) -> TrainOutcome:
        """Train ``model`` with the stage's params (a :class:`TrainingParams`): AdamW,
        linear warm-up and decay, dev evaluation every ``eval_every`` optimizer steps (or
        per epoch), the best dev checkpoint kept, resumable checkpoints, divergence
        checks, the runtime's device, precision and processes. Afterwards ``model`` holds
        the best dev weights; unwrap it with ``ctx.runtime.unwrap(model)``.

        Args:
            options: ``phase`` (a name for logs, default the stage's), and for stages that
                go beyond the task loss: ``loss_fn(outputs, batch)`` (its optional
                ``model_kwargs``: extra forward arguments), ``before_step(t)``,
                ``before_training(total_steps)``, ``extra_state`` (saved in checkpoints),
                ``find_unused_parameters`` (a step may leave trainable parameters unused),
                ``patience_from`` (the optimizer step from which early stopping's patience
                counts), ``evaluate_input`` (score the model on dev at step 0 and keep it
                when no later evaluation beats it: a stage that refines a trained model),
                ``params`` (the stage's params with values it resolved itself).
                With ``patience`` set, training stops early; the returned outcome's
                ``stop_reason``, ``best_epoch`` and ``stop_line()`` say why and where.

        Raises:
            TrainingDivergedError: the loss or the weights stopped being finite.
        """
        return self.services.train(self, model, tokenizer, train_ds, dev_ds, **options)

    def distillation(self, teacher: Any, train_ds: Any,
                     tokenizer: Any) -> tuple[Any, Any, dict[str, Any]]:
        """Vanilla knowledge distillation (Hinton et al. 2015) from ``teacher`` (an artifact
        version with ``model/``), for a stage whose params mix in :class:`DistillParams`:
        ``(train_ds, loss_fn, info)`` to pass on as :meth:`train`'s data and ``loss_fn``
        and to record in the manifest. With ``distill_weight`` 0: the data unchanged,
        ``loss_fn`` None (the task loss) and ``{}``. The teacher's logits on ``train_ds``
        are computed once per teacher version and cached beside it."""
        return self.services.distillation(self, teacher, train_ds, tokenizer)

    def evaluate(self, model: Any, tokenizer: Any, dataset: Any) -> dict[str, float]:
        """The task's metrics (as the benchmark names them, plus ``score``) of ``model`` on a
        tokenised ``dataset`` with labels, on the runtime's device."""
        return self.services.evaluate(self, model, tokenizer, dataset)

    def model_size(self, model: Any) -> dict[str, Any]:
        """``{"layers": L, "parameters": {...}}`` of ``model``, for a manifest's ``info``."""
        return self.services.model_size(model)


@dataclass
class ModelFacts:
    """What a model's config tells without loading weights (for :meth:`Stage.check`).

    Attributes:
        source: where it was read (a directory, ``embedded`` or a hub id).
        model_type: ``config.model_type`` (``"bert"``, ``"roberta"``, ...).
        num_layers: Transformer layers (``config.num_hidden_layers``).
        max_positions: longest input in tokens the position embeddings allow
            (None: no absolute positions).
        config: the Hugging Face ``PretrainedConfig``.
    """

    source: str
    model_type: str
    num_layers: int
    max_positions: int | None
    config: Any = None


@dataclass
class CheckContext:
    """What :meth:`Stage.check` may inspect before any stage of a command runs.

    Attributes:
        config: the resolved workspace configuration.
        task: GLUE task name.
        stage: the stage being checked.
        params: the stage's resolved ``Params``.
        model: facts of the model this stage will read (its input artifact's
            model if one exists, else the predecessor source).
        given: names of the params set on the command line (for messages).
    """

    config: Any
    task: str
    stage: str
    params: Any
    model: ModelFacts
    given: frozenset[str] = frozenset()

    def setting(self, name: str) -> str:
        """Param ``name`` and its value as the user set it, for messages:
        ``--successor-layers 3`` when given on the command line, else
        ``replace.successor_layers: 3 (theseus.yaml or default)``."""
        value = getattr(self.params, name)
        if name in self.given:
            return f"--{name.replace('_', '-')} {value}"
        shown = "null" if value is None else value
        return f"{self.stage}.{name}: {shown} (theseus.yaml or default)"


class Stage(Plugin, ABC):
    """A pipeline stage: reads input artifacts, writes one new artifact version.

    Subclasses set ``name`` (the command name), ``help``, ``inputs`` (names of
    upstream stages whose latest complete version is read, or run first when
    missing), ``Params`` (a dataclass built with :func:`param`) and
    ``summary_metrics`` (metric names ``theseus status`` shows).
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    summary_metrics: ClassVar[tuple[str, ...]] = ()
    #: True for a stage whose artifact is a compressed model ready to evaluate and
    #: export (``model/``, with the teacher in its lineage): ``evaluate``,
    #: ``export``, ``status`` and the GLUE table treat every such stage alike
    #: (the Theseus successor and the baselines). Its manifest's ``info.method``
    #: names the method for tables.
    produces_successor: ClassVar[bool] = False
    #: True when one version serves runs of every seed downstream (the teacher: the
    #: paper fine-tunes the predecessor once and compresses it in several runs).
    #: Otherwise a run with seed s reads inputs made with seed s, running them first.
    shared_across_seeds: ClassVar[bool] = False
    #: False for a stage that other stages run and the user does not (the GLUE table,
    #: which ``evaluate`` publishes): no CLI command, no section in theseus.yaml.
    command: ClassVar[bool] = True

    def inputs_for(self, params: Any, store: Any = None,
                   task: str | None = None) -> tuple[str, ...]:
        """Upstream stages this run reads for ``task``, given its resolved params and the
        workspace's published artifacts (``store``; None when only the names are wanted). Default:
        :attr:`inputs`; a stage may choose (``evaluate --successor truncate``). A name
        may also be a full version label, ``TASK/STAGE/vN`` (the GLUE table's inputs are
        evaluations of several tasks; the benchmark's, the latest export of each model)."""
        return self.inputs

    def accepts_input(self, name: str, manifest: dict[str, Any], params: Any) -> bool:
        """Whether an unpinned run may read this version (its ``manifest``) of input
        ``name``; the newest accepted version is used. Default: any (``export
        --successor truncate`` accepts only evaluations of a truncate successor)."""
        return True

    def on_up_to_date(self, artifact: Any, params: Any, say: Any) -> None:
        """Called instead of :meth:`run` when ``artifact`` already has this run's
        fingerprint (same params and inputs): a stage whose result also lives outside
        the workspace restores it there (``export --output``); ``say(text)`` prints.
        Default: nothing."""

    def choose_input(self, name: str, accepted: list[Any], store: Any,
                     params: Any) -> tuple[Any, str] | None:
        """Which of the ``accepted`` versions of input ``name`` (oldest first) an unpinned
        run reads, and why (one sentence, printed); None: the default, the newest made with
        this run's seed (``export`` picks the successor the method table ranks first)."""
        return None

    @abstractmethod
    def run(self, ctx: StageContext) -> StageResult:
        """Do the stage's work, writing files into ``ctx.out_dir``.

        Raises:
            TheseusError: (a subclass) for bad input; anything else is a bug.
        """

    def check(self, ctx: CheckContext) -> None:
        """Optional: reject a configuration this stage cannot run, before any stage of
        the command (upstream ones included) does work. Cheap: no weights, no data.

        Raises:
            ConfigError: naming the option as the user set it (:meth:`CheckContext.setting`)
                and the accepted values.
        """

    def aggregate(self, pipeline: Any, tasks: list[str], options: dict[str, Any]) -> Any:
        """Optional: run the stage over several tasks (``--glue-all``) as one job.

        The default returns ``NotImplemented`` and the CLI runs the stage task by
        task. A stage overriding it gets the ``Pipeline``, the task names and the
        command's options (``overrides``, ``plugin_overrides``, ``force``) and
        returns what it published (e.g. a cross-task ``Artifact``).
        """
        return NotImplemented
