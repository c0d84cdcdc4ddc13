"""What the core does for a stage: the implementation of the plugin contract's
:class:`~theseus_cli.plugin.StageServices`, which a stage reaches through its context
(``ctx.dataset``, ``ctx.train``, ``ctx.load_model``, ...). The pipeline gives every
stage run one of these; a stage never imports the modules below itself."""

from __future__ import annotations

from typing import Any

from theseus_cli.data import load_tokenized, make_dataloader
from theseus_cli.data.glue import GlueTask
from theseus_cli.model import loading
from theseus_cli.model.fine_tuned import load_fine_tuned
from theseus_cli.plugin import StageContext, StageServices, TrainOutcome
from theseus_cli.store.artifacts import Artifact, ArtifactStore
from theseus_cli.train import distillation, loop


class CoreStageServices(StageServices):
    """Data from the workspace's task, the shared training loop, Hugging Face models
    saved in artifact versions (``model/``)."""

    def store(self, ctx: StageContext) -> ArtifactStore:
        """The workspace's :class:`ArtifactStore` (read access)."""
        return ArtifactStore(ctx.config.artifacts_dir)

    def task_definition(self, ctx: StageContext) -> GlueTask:
        """The task's :class:`GlueTask` (raises UnknownNameError for an unknown task)."""
        return ctx.config.task_definition(ctx.task)

    def load_model(self, ctx: StageContext, artifact: Artifact) -> tuple[Any, Any]:
        """``(model, tokenizer)`` of ``artifact/model`` (ModelSourceError when unreadable)."""
        return loading.load_saved(artifact.file(loading.MODEL_DIR))

    def load_predecessor(self, ctx: StageContext, fine_tuned: bool = False) -> tuple[Any, Any]:
        """The workspace's predecessor, with a new head for the task or (``fine_tuned``) its
        own, labels aligned (:func:`theseus_cli.model.fine_tuned.load_fine_tuned`)."""
        task = ctx.config.task_definition(ctx.task)
        if fine_tuned:
            model, tokenizer, note = load_fine_tuned(ctx.config.model, task, ctx.config.root)
            if note:
                ctx.log.info(f"[yellow]warning: {note}[/]")
            return model, tokenizer
        return loading.load_predecessor(ctx.config.model, task, ctx.config.root)

    def save_model(self, ctx: StageContext, model: Any, tokenizer: Any) -> None:
        """``model/`` of the version being staged, written by the main process only."""
        if ctx.runtime.is_main_process:
            loading.save(model, tokenizer, ctx.out_dir / loading.MODEL_DIR)

    def dataset(self, ctx: StageContext, split: str, tokenizer: Any) -> Any:
        """:func:`theseus_cli.data.load_tokenized` of the workspace's task."""
        return load_tokenized(ctx.config, ctx.config.task_definition(ctx.task), tokenizer, split)

    def train(self, ctx: StageContext, model: Any, tokenizer: Any, train_ds: Any,
              dev_ds: Any, **options: Any) -> TrainOutcome:
        """:func:`theseus_cli.train.loop.train` with the context's params, runtime, log and
        checkpoints (``phase``, the progress label and checkpoint namespace, defaults to
        the stage's name; ``params``, the stage's params with values the stage resolved,
        such as a learning rate chosen by the model's size, defaults to ``ctx.params``)."""
        options.setdefault("phase", ctx.stage or "train")
        options.setdefault("split", ctx.config.data.selection_split)
        params = options.pop("params", ctx.params)
        return loop.train(model=model, tokenizer=tokenizer, task=ctx.config.task_definition(ctx.task),
                          train_ds=train_ds, dev_ds=dev_ds, params=params,
                          runtime=ctx.runtime, log=ctx.log, checkpoints=ctx.checkpoints,
                          **options)

    def distillation(self, ctx: StageContext, teacher: Artifact, train_ds: Any,
                     tokenizer: Any) -> tuple[Any, Any, dict[str, Any]]:
        """:func:`theseus_cli.train.distillation.prepare` with the stage's params."""
        return distillation.prepare(ctx, teacher, train_ds, tokenizer, ctx.config.task_definition(ctx.task),
                                    ctx.params)

    def evaluate(self, ctx: StageContext, model: Any, tokenizer: Any,
                 dataset: Any) -> dict[str, float]:
        """The task's metrics and ``score`` over ``dataset`` (batches of the stage's
        ``eval_batch_size``, else 64)."""
        batch_size = getattr(ctx.params, "eval_batch_size", 64)
        loader = ctx.runtime.prepare(make_dataloader(dataset, tokenizer, batch_size,
                                                     shuffle=False))
        model = ctx.runtime.prepare(model)
        return loop.evaluate(model, loader, ctx.runtime, ctx.config.task_definition(ctx.task))

    def model_size(self, model: Any) -> dict[str, Any]:
        """Layers and parameter counts (:func:`theseus_cli.method.replacing.count_parameters`)."""
        from theseus_cli.method.parameters import (
            count_parameters,  # torch: imported when used
        )

        return {"layers": loading.num_layers(model), "parameters": count_parameters(model)}
