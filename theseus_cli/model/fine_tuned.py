"""A model already fine-tuned on the task, adopted as the teacher (``theseus init
--teacher``): its head kept, its classes matched to the task's by name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from theseus_cli.errors import ConfigError, ModelSourceError
from theseus_cli.model.loading import (
    auto_class,
    from_pretrained_checked,
    load_tokenizer,
    resolve_model_source,
)
from theseus_cli.model.weights import check_loaded_weights
from theseus_cli.plugin import registry


def label_alignment(names: list[str], task: Any) -> tuple[list[int] | None, str | None]:
    """How a fine-tuned model's classes (``names``, in id order) map onto ``task``'s.

    Returns:
        ``(permutation, note)``: ``permutation[i]`` is the model's output row for the task's
        class i (None: the same order); ``note`` a warning to show (generic ``LABEL_i``
        names taken in the task's order), else None.

    Raises:
        ConfigError: another number of classes, or names that are not the task's (both
            sets printed).
    """
    want = list(task.label_names) or ["(one regression output)"]
    have = list(names)
    if task.is_regression:
        if len(have) == 1:
            return None, None
    elif have == want:
        return None, None
    elif sorted(have) == sorted(want):
        return [have.index(w) for w in want], None
    elif len(have) == len(want) and all(re.fullmatch(r"LABEL_\d+", n) for n in have):
        return None, (f"the model's classes are named {have[0]}..{have[-1]}; they are taken as "
                      f"the task's classes in its order: {', '.join(want)}")
    raise ConfigError(f"the fine-tuned model's classes do not fit task {task.name}: the model "
                      f"has {len(have)} ({', '.join(have)}), the task {len(want)} "
                      f"({', '.join(want)}); give the model fine-tuned on this task, or name "
                      "the task's classes as the model does (--labels)")


def check_head(config: Any, task: Any, source: str) -> None:
    """A fine-tuned model's head is of the task kind's class (its ``architectures``).

    Raises:
        ConfigError: e.g. a ``BertForSequenceClassification`` for a token-classification
            task (names both and what to give).
    """
    kind = registry.kind_of(task)
    archs = getattr(config, "architectures", None) or []
    head = kind.model_class.removeprefix("AutoModel")  # "ForTokenClassification"
    if archs and not any(a.endswith(head) for a in archs):
        raise ConfigError(f"the fine-tuned model {source!r} is a {archs[0]}, but task "
                          f"{task.name} is {kind.name} ({kind.model_class}); give a model "
                          f"fine-tuned with a *{head} head")


def load_fine_tuned(model: str, task: Any, root: Path | None = None) -> tuple[Any, Any, str | None]:
    """A model already fine-tuned on ``task`` (``theseus init --teacher``), head and all, of
    the task kind's Auto class (``AutoModelForTokenClassification`` for tagging):
    ``(model, tokenizer, note)``. Its classes are matched to the task's by name
    (:func:`label_alignment`); when only their order differs, the rows of the head's output
    layer are reordered and ``id2label`` rewritten, so logits follow the task's order.

    Raises:
        ModelSourceError: the source cannot be read, or a tensor (the head's too) is missing.
        ConfigError: its classes are not the task's.
    """
    import torch
    from torch import nn

    kind = registry.kind_of(task)
    source = resolve_model_source(model, root)
    tokenizer = load_tokenizer(source, kind.token_level)
    net, info = from_pretrained_checked(auto_class(kind.model_class), source,
                                        output_loading_info=True)
    check_head(net.config, task, source)
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ModelSourceError(f"model {source!r} is to be the teacher as fine-tuned, but its "
                               f"checkpoint lacks {len(missing)} tensor(s) "
                               f"({', '.join(missing[:5])}); its task head would be random")
    check_loaded_weights(net, info, source)
    names = [net.config.id2label[i] for i in range(net.config.num_labels)]
    permutation, note = label_alignment(names, task)
    if permutation is not None:
        prefix = f"{net.base_model_prefix}."
        heads = [m for n, m in net.named_modules() if isinstance(m, nn.Linear)
                 and not n.startswith(prefix) and m.out_features == len(names)]
        if not heads:
            raise ModelSourceError(f"model {source!r}: no output layer of {len(names)} classes "
                                   "found in its head to reorder")
        out = heads[-1]
        index = torch.tensor(permutation)
        with torch.no_grad():
            out.weight.copy_(out.weight[index])
            if out.bias is not None:
                out.bias.copy_(out.bias[index])
    if not task.is_regression:
        net.config.id2label = dict(enumerate(task.label_names))
        net.config.label2id = {n: i for i, n in enumerate(task.label_names)}
    if getattr(net.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        net.config.pad_token_id = tokenizer.pad_token_id
    return net, tokenizer, note
