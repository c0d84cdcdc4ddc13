"""The plugin contract of theseus: everything a third-party plugin needs, and nothing else.

Import from here only (``from theseus_cli.plugin import Stage, param``); this package
imports nothing of theseus but :mod:`theseus_cli.errors`. Five kinds of plugin exist,
each discovered through a Python entry-point group (:mod:`theseus_cli.plugin.registry`);
all derive from :class:`Plugin` (a ``name``, a one-line ``help`` and a ``Params``
dataclass built with :func:`param`):

============================  ========================  ===============================
entry-point group             base class                what it provides
============================  ========================  ===============================
``theseus.stages``            :class:`Stage`            a pipeline stage and command
``theseus.schedulers``        :class:`Scheduler`        replacing rate p per step
``theseus.successors``        :class:`SuccessorBuilder` successor modules
``theseus.families``          :class:`ModelFamily`      where a family keeps its layers
                              (:class:`LayerListFamily`)
``theseus.task_kinds``        :class:`TaskKind`         a kind of task: model class,
                                                        labels, metrics, KD loss
============================  ========================  ===============================

The built-in plugins (``plugins/theseus_builtin``) register through the same entry
points a third-party package would use, e.g. in its ``pyproject.toml``::

    [project.entry-points."theseus.schedulers"]
    cosine = "my_package.schedulers:CosineScheduler"

A ``Params`` dataclass is the single source of a plugin's settings: defaults,
validation of ``theseus.yaml``, the CLI options, and the commented ``theseus.yaml`` that
``theseus init`` writes. Plugin modules must be cheap to import (no torch at module
level) so that ``theseus --help`` stays fast. ``plugins/theseus-example`` shows all five
kinds.
"""

from theseus_cli.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    ExportError,
    ModelSourceError,
    TheseusError,
)
from theseus_cli.plugin.base import (
    FAMILY_GROUP,
    SCHEDULER_GROUP,
    STAGE_GROUP,
    SUCCESSOR_GROUP,
    TASK_KIND_GROUP,
    NoParams,
    Plugin,
    PluginChoice,
    param,
    plugin_choices,
    selector_of,
)
from theseus_cli.plugin.family import (
    AttentionBlock,
    FeedForward,
    LayerListFamily,
    ModelFamily,
)
from theseus_cli.plugin.scheduler import Scheduler
from theseus_cli.plugin.stage import (
    CheckContext,
    ModelFacts,
    Stage,
    StageContext,
    StageResult,
    StageServices,
)
from theseus_cli.plugin.successor import Calibration, SuccessorBuilder
from theseus_cli.plugin.task_kind import IGNORE_INDEX, TaskKind
from theseus_cli.plugin.training import DistillParams, TrainingParams, TrainOutcome

__all__ = [
    "ArtifactError", "AttentionBlock", "Calibration", "CheckContext", "ConfigError",
    "DataError", "DistillParams", "ExportError", "FAMILY_GROUP", "FeedForward", "IGNORE_INDEX",
    "LayerListFamily", "ModelFacts", "ModelFamily", "ModelSourceError", "NoParams",
    "Plugin", "PluginChoice", "SCHEDULER_GROUP", "STAGE_GROUP", "SUCCESSOR_GROUP",
    "Scheduler", "Stage", "StageContext", "StageResult", "StageServices",
    "SuccessorBuilder", "TASK_KIND_GROUP", "TaskKind", "TheseusError", "TrainOutcome", "TrainingParams",
    "param", "plugin_choices", "selector_of",
]
