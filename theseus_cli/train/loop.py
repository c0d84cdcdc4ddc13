"""The training and evaluation loop shared by every training stage.

One loop serves fine-tuning the predecessor, module replacing and successor
fine-tuning: AdamW over the trainable parameters, linear warm-up/decay,
gradient clipping of trainable parameters only, dev evaluation every N
optimizer steps, and the best dev checkpoint kept (early-stopping selection,
paper section 4.3). A ``before_step`` hook lets module replacing draw its
Bernoulli mask once per optimizer step.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from theseus_cli.data import make_dataloader
from theseus_cli.data.batching import concat_padded
from theseus_cli.data.glue import GlueTask
from theseus_cli.errors import CheckpointError, DeviceError, TrainingDivergedError
from theseus_cli.plugin.training import TrainingParams, TrainOutcome
from theseus_cli.store.checkpoint import (
    Checkpointer,
    CheckpointPolicy,
    plain,
    restore_rng,
)
from theseus_cli.train.divergence import DivergenceGuard
from theseus_cli.train.runlog import RunLog
from theseus_cli.train.runtime import Runtime


def predict(model: Any, loader: Any, runtime: Runtime) -> tuple[Any, Any]:
    """Logits and labels over a (prepared) dataloader, gathered across processes.

    Returns:
        ``(logits, labels)`` as NumPy arrays of shape (N, num_labels) and (N,),
        with the duplicated tail samples of distributed sharding dropped; a
        token-level kind: (N, L, num_labels) and (N, L), every batch padded to the
        longest L (logits 0, labels -100).
    """
    import torch

    was_training = model.training
    model.eval()
    all_logits, all_labels = [], []
    with torch.inference_mode():
        for batch in loader:
            out = model(**{k: v for k, v in batch.items() if k != "labels"})  # test labels are -1
            logits, labels = out.logits.float(), batch["labels"]
            if logits.dim() == 3:  # token-level (B, L, C): every process's L made the same
                logits = runtime.pad_across_processes(logits, 1, 0.0)
                labels = runtime.pad_across_processes(labels, 1, -100)
            logits, labels = runtime.gather_for_metrics((logits, labels))
            all_logits.append(logits.cpu().numpy())
            all_labels.append(labels.cpu().numpy())
    model.train(was_training)
    return concat_padded(all_logits, 0.0), concat_padded(all_labels, -100)


def evaluate(model: Any, loader: Any, runtime: Runtime, task: GlueTask) -> dict[str, float]:
    """GLUE dev metrics of ``model`` plus ``score`` (the paper's per-task number).

    Logits holding NaN/inf make every metric NaN (an argmax over NaN would
    otherwise score as "always class 0"); a NaN score is never selected as best.
    """
    from theseus_cli.data.metrics import score_logits

    return score_logits(task, *predict(model, loader, runtime))


def _optimizer(model: Any, trainable: list[Any], params: TrainingParams) -> Any:
    import torch

    ids = {id(p) for p in trainable}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if id(p) not in ids:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
         else decay).append(p)
    groups = [{"params": decay, "weight_decay": params.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=params.learning_rate)


def train(*, model: Any, tokenizer: Any, task: GlueTask, train_ds: Any, dev_ds: Any,
          params: TrainingParams, runtime: Runtime, log: RunLog, phase: str,
          before_step: Callable[[int], dict[str, Any]] | None = None,
          extra_state: Any = None, checkpoints: Checkpointer | None = None,
          find_unused_parameters: bool = False,
          before_training: Callable[[int], None] | None = None,
          loss_fn: Callable[[Any, dict[str, Any]], Any] | None = None,
          patience_from: int | Callable[[], int] = 0,
          evaluate_input: bool = False, split: str = "dev") -> TrainOutcome:
    """Train the parameters of ``model`` that have ``requires_grad`` and keep the best.

    Args:
        model: a ``*ForSequenceClassification`` model (or a hybrid); trainable
            parameters are those with ``requires_grad=True``.
        train_ds, dev_ds: tokenised datasets (``theseus_cli.data.tokenize_split``).
        before_step: called with the 0-based optimizer step ``t`` before its
            first micro-batch, identically on every process; returns values to
            log (e.g. ``{"p": 0.4}``). A returned ``grad_path=False`` (not
            logged) says the step has no gradient path to any trainable
            parameter: its forward passes run on the unwrapped model without
            autograd, so no DDP reduction is pending, and it does no backward.
        extra_state: an object with ``state_dict()`` / ``load_state_dict(d)``
            saved in, and restored from, checkpoints (e.g. the replacing
            scheduler).
        checkpoints: where to checkpoint and resume (``StageContext.checkpoints``);
            None: no checkpoints. Frequency: ``params.save_every`` steps /
            ``params.save_every_minutes`` minutes.
        find_unused_parameters: DDP must expect parameters unused in a step.
        phase: progress-bar label and checkpoint namespace.
        loss_fn: ``loss_fn(outputs, batch)`` -> scalar loss instead of the model's
            own task loss (e.g. knowledge distillation, which reads the batch's
            ``teacher_logits``); batch keys the model does not take are never
            passed to it.
        before_training: called once with the planned number of optimizer steps
            (after resume state is known, before the first step), e.g. to bind a
            scheduler that reaches p = 1 at a fraction of training.
        patience_from: with ``params.patience`` set, dev evaluations before this optimizer
            step never count towards the patience (module replacing: the step at which
            p reaches 1, before which the successor is still being assembled); an int,
            or a callable read at each evaluation (after ``before_training``).
        evaluate_input: evaluate ``model`` on dev once before the first optimizer step
            (step 0) and count that score as the first candidate best, so a stage that
            starts from a trained model (finetune-successor) never returns weights that
            score below its input: when no epoch beats it, ``best_step`` is 0 and the
            input's weights come back unchanged.
        split: what ``dev_ds`` is, as the logs name it: ``"dev"``, or ``"held-out"`` when
            the workspace selects on a slice of the training set (``data.selection``).

    Early stopping: with ``params.patience = k``, training ends after k dev evaluations
    in a row (from ``patience_from`` on) without a new best score; the learning-rate
    schedule still spans ``epochs`` (the maximum), as transformers' EarlyStoppingCallback
    does. ``TrainOutcome.stop_reason`` says why it ended.

    A step whose loss has no gradient path (e.g. every module drew its frozen
    predecessor) does no backward pass and no optimizer update; the step still
    counts, so schedules stay aligned with ``t``. The data order of epoch ``e``
    comes from the seed ``seed + e``, so a resumed run replays the same
    batches; with the RNG states restored, it ends bitwise where an
    uninterrupted run ends.

    Returns:
        :class:`TrainOutcome`; ``model`` is left holding the best dev weights.

    Raises:
        CheckpointError: a checkpoint exists but cannot be resumed.
        DeviceError: ``torch.compile`` failed (``--compile``).
        TrainingDivergedError: the loss became NaN/inf and stayed so (see
            :mod:`theseus_cli.train.divergence`), or no dev evaluation had a finite
            score; the last checkpoint from before it is kept.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    t0 = time.monotonic()
    runtime.seed_everything()
    trainable = [p for p in model.parameters() if p.requires_grad]
    train_loader = make_dataloader(train_ds, tokenizer, params.batch_size, shuffle=True,
                                   seed=runtime.seed, group_by_length=params.group_by_length)
    order = train_loader.generator  # the shuffle generator, reseeded at every epoch start
    dev_loader = make_dataloader(dev_ds, tokenizer, params.eval_batch_size, shuffle=False)
    optimizer = _optimizer(model, trainable, params)
    model, optimizer, train_loader, dev_loader = runtime.prepare(
        model, optimizer, train_loader, dev_loader, find_unused_parameters=find_unused_parameters)
    accum = runtime.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(len(train_loader) / accum))
    total = params.max_steps or params.epochs * steps_per_epoch
    lr_schedule = get_linear_schedule_with_warmup(
        optimizer, int(params.warmup_ratio * total), max(total, 1))
    eval_every = params.eval_every or steps_per_epoch
    if before_training is not None:
        before_training(total)
    plain_model = runtime.unwrap(model)
    names = {id(p): n for n, p in plain_model.named_parameters()}

    best = TrainOutcome(-math.inf, {}, 0, 0, 0.0, steps_per_epoch=steps_per_epoch,
                        stop_reason="max_steps" if params.max_steps else "max_epochs",
                        split=split)
    best_state: dict[str, Any] | None = None
    step, epoch, skip, losses, extra, grad_path, elapsed = 0, 0, 0, [], {}, True, 0.0
    stale = 0  # dev evaluations in a row without a new best (counted from patience_from)

    def snapshot() -> dict[str, Any]:
        scaler = runtime.scaler
        return {"step": step, "epoch": epoch, "batches_in_epoch": skip, "elapsed_s": elapsed_now(),
                "model": {names[id(p)]: p.detach().to("cpu", copy=True) for p in trainable},
                "optimizer": optimizer.state_dict(), "lr_scheduler": lr_schedule.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "best": plain({"score": best.best_score, "metrics": best.best_metrics,
                               "step": best.best_step, "evaluations": best.evaluations,
                               "stale": stale}),
                "best_state": best_state,
                "extra": plain(extra_state.state_dict()) if extra_state is not None else None}

    def elapsed_now() -> float:
        return elapsed + time.monotonic() - t0

    resumed = checkpoints.load(phase, runtime) if checkpoints is not None else None
    if resumed is not None:
        s = resumed.state
        by_name = {names[id(p)]: p for p in trainable}
        if set(s["model"]) != set(by_name):
            raise CheckpointError(f"checkpoint {resumed.path} holds other trainable parameters "
                                  "than this run; rerun with --restart to start over")
        with torch.no_grad():
            for name, p in by_name.items():
                p.copy_(s["model"][name].to(p.device))
        optimizer.load_state_dict(s["optimizer"])
        lr_schedule.load_state_dict(s["lr_scheduler"])
        if s["scaler"] is not None and runtime.scaler is not None:
            runtime.scaler.load_state_dict(s["scaler"])
        b = s["best"]
        best.best_score, best.best_metrics, best.best_step = b["score"], b["metrics"], b["step"]
        best.evaluations = list(b["evaluations"])
        stale = int(b.get("stale", 0))
        best_state = s["best_state"]
        if extra_state is not None and s["extra"] is not None:
            extra_state.load_state_dict(s["extra"])
        step, epoch, skip, elapsed = s["step"], s["epoch"], s["batches_in_epoch"], s["elapsed_s"]
        if runtime.is_main_process and log.path is not None:
            if resumed.log is not None:
                shutil.copyfile(resumed.log, log.path)
            else:
                log.path.unlink(missing_ok=True)
        log.set_elapsed(elapsed)
        log.info(f"resuming {checkpoints.label} from step {step} (checkpoint {resumed.path})")
        restore_rng(resumed.rng)  # last: nothing above may draw random numbers after it
    policy = CheckpointPolicy(params.save_every, params.save_every_minutes, runtime)
    label = f"{task.name}/{phase}"
    guard = DivergenceGuard(label, runtime, params.learning_rate, params.max_nonfinite_steps,
                            checkpoint_hint=lambda: checkpoints.latest_path(phase)
                            if checkpoints is not None else None)

    def run_eval() -> bool:
        """Evaluate on dev, keep the best; True when the patience ran out."""
        nonlocal best_state, stale
        metrics = evaluate(model, dev_loader, runtime, task)
        record = {"step": step, **{f"dev_{k}": v for k, v in metrics.items()}}
        best.evaluations.append(record)
        log.record("eval", **record, split=split)  # the plot's axis names the split
        improved = math.isfinite(metrics["score"]) and metrics["score"] > best.best_score
        if improved:
            best.best_score, best.best_metrics, best.best_step = metrics["score"], metrics, step
            best_state = {names[id(p)]: p.detach().to("cpu", copy=True) for p in trainable}
        bar.update(step, **{split: metrics["score"]})
        shown = ", ".join(f"{k} {100 * v:.2f}" for k, v in metrics.items())
        log.info(f"{phase} step {step}/{total}: {split} {shown}"
                 f"{' (best so far)' if improved else ''}")
        start = patience_from() if callable(patience_from) else patience_from
        if improved:
            stale = 0
        elif step >= start:
            stale += 1
        return params.patience is not None and stale >= params.patience and step < total

    model.train()
    stopped = False
    with log.phase(phase, total) as bar, _compile_errors(runtime):
        bar.update(step)
        if evaluate_input and step == 0 and not best.evaluations:
            run_eval()  # the input's own score: the one to beat (never stops the run)
        while step < total and not stopped:
            order.manual_seed(runtime.seed + epoch)
            loader = runtime.skip_first_batches(train_loader, skip) if skip else train_loader
            new_step = True
            for batch in loader:
                if new_step:
                    extra = dict(before_step(step)) if before_step else {}
                    grad_path, new_step = extra.pop("grad_path", True), False
                skip += 1
                with runtime.accumulate(model):
                    if grad_path:
                        loss = _loss(model, batch, loss_fn)
                    else:  # no trainable parameter in the graph: no autograd, no DDP
                        with torch.no_grad():
                            loss = _loss(plain_model, batch, loss_fn)
                    losses.append(loss.detach().float().item())
                    if loss.requires_grad:
                        runtime.backward(loss)
                    if runtime.sync_gradients:
                        guard.after_step(step + 1, losses, lr_schedule.get_last_lr()[0])
                        _optimizer_step(runtime, optimizer, lr_schedule, trainable, params)
                if not runtime.sync_gradients:
                    continue
                new_step = True
                step += 1
                mean_loss = sum(losses) / len(losses)
                losses = []
                log.record("train", step=step, epoch=epoch, loss=mean_loss,
                           lr=lr_schedule.get_last_lr()[0], **extra)
                bar.update(step, loss=mean_loss, **{k: v for k, v in extra.items() if k == "p"})
                if (step % eval_every == 0 or step == total) and run_eval():
                    stopped = True
                    best.stop_reason = "patience"
                    log.info(f"{phase}: early stop at step {step}: {params.patience} {split} "
                             f"evaluations without a new best (best at step {best.best_step})")
                    break
                if step >= total:
                    break
                if checkpoints is not None and policy.enabled and guard.healthy and policy.due(step):
                    guard.check_weights(step, trainable, names, lr_schedule.get_last_lr()[0])
                    checkpoints.save(phase, step, runtime, snapshot() if runtime.is_main_process
                                     else {}, log.path, {"epoch": epoch, "batches_in_epoch": skip})
                    policy.saved()
            else:
                epoch, skip = epoch + 1, 0
    if best_state is None:
        scores = ", ".join(f"step {e['step']}: {e.get('dev_score')}" for e in best.evaluations)
        raise TrainingDivergedError(
            f"{label}: no {split} evaluation gave a finite score ({scores or 'none ran'}); the model's "
            f"{split} predictions are non-finite or constant (a correlation of constant predictions "
            "is undefined). Nothing was published. Rerun with a lower --learning-rate or more "
            "training steps")
    with torch.no_grad():
        for p in trainable:
            p.copy_(best_state[names[id(p)]].to(p.device))
    best.steps, best.seconds = step, elapsed_now()
    return best


#: batch keys that are not model inputs (read by a ``loss_fn``)
_NOT_INPUTS = ("teacher_logits",)


def _loss(model: Any, batch: dict[str, Any], loss_fn: Any) -> Any:
    """The step's loss: the model's task loss, or ``loss_fn(outputs, batch)`` (a ``loss_fn``
    with a ``model_kwargs`` dict passes them to the forward pass, e.g. PKD's
    ``output_hidden_states=True``)."""
    inputs = {k: v for k, v in batch.items() if k not in _NOT_INPUTS}
    if loss_fn is None:
        return model(**inputs).loss
    return loss_fn(model(**inputs, **getattr(loss_fn, "model_kwargs", {})), batch)


def _optimizer_step(runtime: Runtime, optimizer: Any, lr_schedule: Any, trainable: list[Any],
                    params: TrainingParams) -> None:
    """Clip, step and zero the gradients; a step without any gradient (no
    gradient path) skips the optimizer (a GradScaler cannot step without
    gradients) but still advances the learning-rate schedule."""
    import warnings

    if any(p.grad is not None for p in trainable):
        if params.max_grad_norm:
            runtime.clip_grad_norm_(trainable, params.max_grad_norm)
        optimizer.step()
        lr_schedule.step()
    else:
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            lr_schedule.step()
    optimizer.zero_grad(set_to_none=True)


@contextmanager
def _compile_errors(runtime: Runtime) -> Iterator[None]:
    """Turn a torch.compile failure into a DeviceError (only with ``--compile``)."""
    if not runtime.compile:
        yield
        return
    import torch._dynamo

    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as e:
        raise DeviceError(f"--compile: torch.compile failed ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); run without --compile") from e
