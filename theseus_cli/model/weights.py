"""Whether a checkpoint's files hold the weights its config promises: Git LFS pointers in
place of weights, and tensors missing, unexpected or resized outside the task head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from theseus_cli.errors import ModelSourceError

#: how a Git LFS pointer file starts (a checkout made without ``git lfs``)
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.h5", "*.msgpack")


def check_lfs_pointers(source: str) -> None:
    """Refuse a local model directory whose weight files are Git LFS pointers (the small
    text files a clone without ``git lfs`` leaves in place of the weights).

    Raises:
        ModelSourceError: naming the file and suggesting ``git lfs pull``.
    """
    root = Path(source)
    if not root.is_dir():
        return
    for pattern in WEIGHT_FILES:
        for f in sorted(root.glob(pattern)):
            try:
                with open(f, "rb") as fh:
                    head = fh.read(len(LFS_POINTER))
            except OSError:
                continue
            if head == LFS_POINTER:
                raise ModelSourceError(
                    f"{str(f)!r} is a Git LFS pointer file, not the model's weights (the "
                    "repository was cloned without Git LFS); run `git lfs pull` in "
                    f"{str(root)!r} (after `git lfs install`), then rerun")


def check_loaded_weights(model: Any, info: dict[str, Any], source: str) -> None:
    """Refuse a predecessor whose checkpoint does not fill its encoder or decoder.

    Only the task head (everything outside ``model.base_model_prefix``: ``classifier``,
    ``score``, DeBERTa's pooler) may be new, missing or of another size: it is what a
    model fine-tuned for another task, or a bare pretrained model, lacks; and a pooler the
    model has no use for (token classification) may be dropped. Any other missing,
    unexpected or resized tensor inside the base model would be randomly initialised (or
    dropped) and is an error that names the tensors.

    Args:
        info: ``from_pretrained(..., output_loading_info=True)``'s second value.

    Raises:
        ModelSourceError: naming up to 5 tensors of each kind and what to do.
    """
    prefix = f"{model.base_model_prefix}."
    base_keys = {k for k in model.state_dict() if k.startswith(prefix)}

    def inside(key: str) -> bool:
        return key.startswith(prefix) or f"{prefix}{key}" in base_keys

    problems = []
    for kind, keys in (("missing", info.get("missing_keys") or ()),
                       ("unexpected", info.get("unexpected_keys") or ()),
                       ("of another shape", [k[0] if isinstance(k, tuple) else k
                                             for k in info.get("mismatched_keys") or ()])):
        # a pooler the model does not have (token classification heads sit on the hidden
        # states; BertForTokenClassification drops the pooler) is dropped on purpose
        bad = sorted(k for k in keys if inside(k)
                     and not (kind == "unexpected" and ".pooler." in f".{k}"))
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            problems.append(f"{len(bad)} {kind} ({shown})")
    if problems:
        raise ModelSourceError(
            f"model {source!r}: its checkpoint does not match its config outside the task "
            f"head: tensors {'; '.join(problems)}; they would be randomly initialised or "
            "dropped. Restore the weights file, or save the model again with save_pretrained "
            "(only the task head of a model fine-tuned for another task may be new)")
