"""The whole plugin contract of theseus, in one module.

Four kinds of plugin exist, each discovered through a Python entry-point
group (see ``theseus_cli.registry``); all derive from :class:`Plugin` (a
``name``, a one-line ``help`` and a ``Params`` dataclass):

============================  =====================  ==========================
entry-point group             base class             what it provides
============================  =====================  ==========================
``theseus.stages``            :class:`Stage`         a pipeline stage / command
``theseus.schedulers``        :class:`Scheduler`     replacing rate p per step
``theseus.successors``        :class:`SuccessorBuilder`  successor modules
``theseus.families``          :class:`ModelFamily`   where a model family keeps
                                                     its layers; successor config
============================  =====================  ==========================

The built-in plugins (``plugins/theseus_builtin``) register through the same
entry points a third-party package would use, e.g. in its ``pyproject.toml``::

    [project.entry-points."theseus.schedulers"]
    cosine = "my_package.schedulers:CosineScheduler"

Every plugin class declares a ``Params`` dataclass built with :func:`param`.
It is the single source of the plugin's settings: defaults, validation of
``theseus.yaml``, the CLI options, and the commented ``theseus.yaml`` that
``theseus init`` writes. Plugin modules must be cheap to import (no torch at
module level) so that ``theseus --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # heavy imports only for type checkers
    from torch import nn

    from theseus_cli.artifacts import Artifact, ArtifactStore
    from theseus_cli.checkpoint import Checkpointer
    from theseus_cli.config import WorkspaceConfig
    from theseus_cli.runtime import Runtime
    from theseus_cli.runlog import RunLog

STAGE_GROUP = "theseus.stages"
SCHEDULER_GROUP = "theseus.schedulers"
SUCCESSOR_GROUP = "theseus.successors"
FAMILY_GROUP = "theseus.families"


def param(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    cli: bool = True,
    plugin_group: str | None = None,
    fingerprint: bool = True,
) -> Any:
    """Declare one plugin setting as a dataclass field.

    Args:
        default: value used when neither theseus.yaml nor the CLI sets it.
            Lists and dicts are copied per instance.
        help: one line, shown in ``--help`` and as the comment in theseus.yaml.
            State units (steps, epochs, seconds, MB) here.
        choices: closed set of accepted values; anything else is a ConfigError
            that lists them.
        min, max: inclusive numeric bounds.
        cli: whether the stage command gets a ``--option`` for it.
        plugin_group: makes this a ``dict`` of per-plugin arguments keyed by
            plugin name (e.g. ``schedulers: {linear: {b: 0.3}}``) for the
            entry-point group given; each entry is validated against that
            plugin's ``Params``. The plugin in use is picked by the field named
            like this one without its final ``s`` (``scheduler``), and the CLI
            sets its arguments with ``--<that name>-arg KEY=VALUE``.
        fingerprint: False for settings that cannot change a stage's result
            (e.g. checkpoint frequency): they stay out of the fingerprint that
            decides whether a stage is up to date or a run can resume.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None,
            "min": min, "max": max, "cli": cli and plugin_group is None,
            "plugin_group": plugin_group, "fingerprint": fingerprint}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NoParams:
    """``Params`` of a plugin without settings."""


class Plugin:
    """What every plugin kind has: its entry-point ``name``, a one-line ``help`` (shown by
    ``theseus plugins`` and ``--help``) and a ``Params`` dataclass built with :func:`param`."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams


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


@dataclass
class StageContext:
    """Everything a stage's :meth:`Stage.run` may use.

    Attributes:
        config: the resolved workspace configuration (model, task, data, runtime).
        task: GLUE task name as GLUE spells it, e.g. ``"MRPC"``.
        params: the stage's resolved ``Params`` instance (defaults < file < CLI).
        inputs: upstream stage name -> the complete artifact version used.
        out_dir: staging directory; every file written here is published
            atomically as the new version when ``run`` returns.
        runtime: the shared device/precision/process runtime.
        log: JSON-lines metrics log and rich progress for this run.
        checkpoints: resumable checkpoints of this run; pass it to
            ``theseus_cli.training.train`` (None: no checkpointing).
        plugins: the plugins the params select, built with their resolved params,
            keyed by selector: ``plugins["scheduler"]`` (a :class:`Scheduler`),
            ``plugins["successor"]`` (a :class:`SuccessorBuilder`).
    """

    config: WorkspaceConfig
    task: str
    params: Any
    inputs: dict[str, Artifact]
    out_dir: Path
    runtime: Runtime
    log: RunLog
    checkpoints: Checkpointer | None = None
    plugins: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> ArtifactStore:
        """Read access to the workspace's published artifacts (lineage, other versions)."""
        from theseus_cli.artifacts import ArtifactStore

        return ArtifactStore(self.config.artifacts_dir)

    def lineage(self, artifact: Artifact, stage: str) -> Artifact:
        """The version of ``stage`` in ``artifact``'s lineage (e.g. its teacher).

        Raises:
            ArtifactError: none there.
        """
        return self.store.lineage(artifact, stage)

    def load_model(self, artifact: Artifact) -> tuple[Any, Any]:
        """``(model, tokenizer)`` saved in ``artifact`` (stock, or restructured by a
        successor builder). Raises ModelSourceError when it cannot be read."""
        from theseus_cli import models

        return models.load_saved(artifact.file(models.MODEL_DIR))

    def load_predecessor(self) -> tuple[Any, Any]:
        """The workspace's pretrained predecessor with a new head for this task."""
        from theseus_cli import models
        from theseus_cli.glue import get_task

        return models.load_predecessor(self.config.model, get_task(self.task), self.config.root)

    def save_model(self, model: Any, tokenizer: Any) -> None:
        """Write the model into this version (``model/``), on the main process only."""
        from theseus_cli import models

        if self.runtime.is_main_process:
            models.save(model, tokenizer, self.out_dir / models.MODEL_DIR)


@dataclass
class Calibration:
    """Data a successor builder may score the predecessor on (importance of heads).

    Attributes:
        model: the fine-tuned teacher, ``*ForSequenceClassification`` in eval mode, whose
            layers (or whose pretrained counterparts) :meth:`SuccessorBuilder.build` gets.
        batches: a few training batches of the task, dicts of tensors with ``labels``,
            on the model's device.
    """

    model: Any
    batches: list[dict[str, Any]]


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

    config: WorkspaceConfig
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

    def inputs_for(self, params: Any, store: ArtifactStore | None = None,
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

    @abstractmethod
    def run(self, ctx: StageContext) -> StageResult:
        """Do the stage's work, writing files into ``ctx.out_dir``.

        Raises:
            TheseusError subclasses for bad input; anything else is a bug.
        """

    def check(self, ctx: CheckContext) -> None:
        """Optional: reject a configuration this stage cannot run, before any stage of
        the command (upstream ones included) does work. Cheap: no weights, no data.

        Raises:
            ConfigError: naming the option as the user set it (:meth:`CheckContext.option`)
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


class Scheduler(Plugin, ABC):
    """Replacing-rate scheduler: the probability p that a module is replaced.

    ``rate(t)`` is called once per optimizer step ``t`` (0-based, counted in
    optimizer steps, not micro-batches or epochs) and must return a value in
    [0, 1]. Paper: section 3.3 (eq. 6) for the curriculum scheduler.
    """

    def __init__(self, params: Any):
        self.params = params

    @abstractmethod
    def rate(self, step: int) -> float:
        """Replacing rate p_d at optimizer step ``step`` (0-based), in [0, 1]."""

    def bind(self, total_steps: int) -> None:
        """Learn the stage's planned number of optimizer steps, once, before the first
        :meth:`rate` call (e.g. to reach p = 1 at a fraction of training). Default: nothing.

        Raises:
            ConfigError: the scheduler's params cannot work with ``total_steps``.
        """

    def state_dict(self) -> dict[str, Any]:
        """State beyond ``params`` that ``rate`` depends on, saved in training
        checkpoints (plain Python values and tensors). Default: none, for a
        scheduler whose rate is a function of the step only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` when a run resumes. Default: nothing."""

    def describe(self) -> str:
        """One human-readable line, e.g. ``p_d = min(1, 0.0006·t + 0.3)``."""
        return f"{self.name}({dataclasses.asdict(self.params)})"


class SuccessorBuilder(Plugin, ABC):
    """Builds the successor modules ``scc_1 .. scc_n`` (paper section 3.1).

    The predecessor's ``L`` Transformer layers are grouped into ``n`` modules of
    ``L / n`` consecutive layers; ``build`` returns ``n`` successor modules,
    module ``i`` standing in for predecessor module ``i``.

    Call convention: successor module ``i`` is called exactly as the model family's
    own encoder or decoder loop calls the first predecessor layer of group ``i``
    (layer ``i·L/n``): the same positional and keyword arguments, passed through
    unchanged by the router (``theseus_cli.replacing.RoutedLayer``). The first
    argument is the hidden states, (batch, seq_len, hidden); the module returns
    what that layer returns (a tensor of the same shape, or a tuple whose first
    element is one, as the family's layers do). If every module is an instance of
    the predecessor's layer class, the assembled successor (eq. 5) is a stock
    Hugging Face model with ``n`` layers (:meth:`ModelFamily.build_successor`).
    """

    #: the predecessor's :class:`ModelFamily`, set by the replace stage before :meth:`build`
    #: (for types that need to know where a layer's parts are, e.g. its feed-forward block)
    family: Any = None
    #: a :class:`Calibration` the replace stage sets before :meth:`build` when
    #: :meth:`calibration_batches` > 0: data for importance scores (of attention heads)
    calibration: Any = None

    def __init__(self, params: Any):
        self.params = params

    def calibration_batches(self) -> int:
        """Training batches :meth:`build` wants in :attr:`calibration` (0, the default: none)."""
        return 0

    @property
    def init_source(self) -> str:
        """Whose layers :meth:`build` receives: ``"teacher"`` (the fine-tuned
        predecessor, as the official code) or ``"pretrained"`` (the predecessor
        before task fine-tuning, as the paper's section 4.3 wording). Default: teacher."""
        return "teacher"

    @abstractmethod
    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Return ``num_modules`` new, trainable successor modules.

        Args:
            predecessor_layers: the L layers to initialise from, in order (not
                modified): the teacher's or the pretrained predecessor's, as
                :attr:`init_source` asks.
            num_modules: n, the number of modules; L is divisible by n.

        Raises:
            ConfigError: when this builder cannot build n modules from these layers.
        """

    def config_updates(self, modules: Sequence[nn.Module]) -> dict[str, Any]:
        """Changes to the successor's config that make ``modules`` stock layers of the
        family (``narrow-ffn``: ``intermediate_size``). Default: none."""
        return {}

    def layer_spec(self, module: nn.Module) -> dict[str, Any] | None:
        """What makes ``module`` differ from a stock layer beyond what the config says
        (``low-rank``: the rank of each factorised linear map), as JSON-able values;
        None for a stock layer. Saved with the model (``theseus_successor.json``);
        :meth:`restructure` rebuilds the shapes from it when the model is loaded. A module
        with a spec may be of any class (``narrow-hidden`` wraps the family's layer);
        one without must be an instance of the predecessor's layer class."""
        return None

    def restructure(self, layer: nn.Module, spec: dict[str, Any]) -> nn.Module:
        """The module (fresh weights) of the structure ``spec`` describes, made from the
        stock ``layer`` (which it may change or wrap), so that the saved weights load into
        it. Default: ``layer`` unchanged."""
        return layer


class ModelFamily(Plugin, ABC):
    """A family of Transformer models module replacing can work on (BERT, GPT-2, ...).

    A family says where a ``*ForSequenceClassification`` model of its ``model_types``
    keeps its list of Transformer layers. Everything outside that list (embeddings,
    relative-position tables, rotary embeddings, final norms, pooler, head) stays
    the family's own code: module replacing puts a routed slot in each entry of the
    list and lets the family's encoder or decoder loop call them with its own
    arguments. ``theseus_cli.families.LayerListFamily`` implements every method for
    families whose layers are a ``ModuleList`` at one attribute path; a family
    plugin usually subclasses it and sets ``model_types`` and ``layers_path``.
    """

    #: ``config.model_type`` values of the family (``"bert"``, ``"llama"``, ...)
    model_types: ClassVar[tuple[str, ...]] = ()
    #: what lies outside the layer list and runs unchanged, for ``theseus plugins``
    outside: ClassVar[str] = ""

    def __init__(self, params: Any = None):
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def layers(self, model: nn.Module) -> list[nn.Module]:
        """The L Transformer layers in the order the model applies them (a layer shared
        by several applications, as ALBERT's, appears once per application)."""

    @abstractmethod
    def install(self, model: nn.Module, slots: Sequence[nn.Module]) -> None:
        """Put ``slots`` (one per entry of :meth:`layers`, in order) where the layers
        were, so that the model's own loop calls slot j where it called layer j."""

    @abstractmethod
    def build_successor(self, model: nn.Module, modules: Sequence[nn.Module]) -> nn.Module:
        """A new model of ``model``'s class with ``len(modules)`` layers: everything
        outside the layer list copied from ``model``, layer i a copy of ``modules[i]``.

        Raises:
            ExportError: a module cannot be a layer of the family's stock model.
        """

    def conform(self, modules: nn.ModuleList) -> nn.ModuleList:
        """Make module i fit position i of the family's n-layer model before training
        (ModernBERT's first layer has no attention norm). Default: unchanged."""
        return modules

    def check(self, config: Any, num_modules: int | None = None) -> None:
        """Reject, from the model's config alone, a configuration the family cannot
        route or export (before any training). Default: accept.

        Raises:
            ConfigError / ModelSourceError: naming the setting and what is accepted.
        """
