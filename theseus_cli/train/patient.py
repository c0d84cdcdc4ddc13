"""Patient knowledge distillation (BERT-PKD, Sun et al. 2019, section 3).

The student (the bottom n pretrained layers) learns from the teacher's logits and from
its intermediate layers. Per batch::

    L_PKD = (1 − α)·CE(z_s, y) + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))      (eq. 5)
          + β · Σ_j ‖ h_s,j / ‖h_s,j‖₂ − h_t,m(j) / ‖h_t,m(j)‖₂ ‖²               (eq. 4)

``h_s,j`` is the student's hidden state of the pooled token ([CLS] for encoders, the
last real token for decoders; every real token for token classification) after its
layer j, for j = 1 .. n − 1 (the last layer is covered by the logits), and ``m(j)`` the
teacher layer it is matched to:

- PKD-Skip: every (L/n)-th teacher layer, m(j) = j·L/n (12 → 6: layers 2, 4, 6, 8, 10);
- PKD-Last: the n − 1 layers below the teacher's last, m(j) = L − n + j (7 .. 11).

As the official code (``patience_loss`` with normalised patience), the squared distance
is averaged over the elements (matched layers × pooled tokens × hidden size), so β is
on that scale (the official default β = 500). The cross-entropy / KL part is the task
kind's ``distill_loss`` (MSE for regression), as vanilla KD's.
"""

from __future__ import annotations

from typing import Any

from theseus_cli.errors import ConfigError

STRATEGIES = ("skip", "last")


def layer_map(strategy: str, teacher_layers: int, student_layers: int,
              given: list[int] | None = None) -> list[int]:
    """The teacher layer m(j) (1-based: ``hidden_states[m]`` is its output) matched to
    student layer j = 1 .. n − 1.

    Args:
        strategy: ``skip`` (PKD-Skip) or ``last`` (PKD-Last); ignored when ``given``.
        teacher_layers: L. student_layers: n (1 ≤ n ≤ L).
        given: an explicit map, n − 1 increasing teacher layers in 1 .. L − 1.

    Raises:
        ConfigError: a map that does not fit the depths (names the depths and the map),
            PKD-Skip when n does not divide L, or an unknown strategy.
    """
    L, n = int(teacher_layers), int(student_layers)
    if not 1 <= n <= L:
        raise ConfigError(f"PKD: a student of {n} layers from a teacher of {L}; accepted: "
                          f"1 to {L} layers")
    if given is not None:
        m = [int(x) for x in given]
        if len(m) != n - 1 or m != sorted(set(m)) or not all(1 <= x <= L - 1 for x in m):
            raise ConfigError(
                f"PKD layer map {','.join(map(str, m)) or '(empty)'} does not fit a student of "
                f"{n} layers and a teacher of {L}: give {n - 1} increasing teacher layers "
                f"from 1 to {L - 1}, one per student layer 1 .. {n - 1}")
        return m
    if strategy == "skip":
        if L % n:
            raise ConfigError(f"PKD-Skip needs the student's {n} layers to divide the teacher's "
                              f"{L}; use --strategy last or give --layer-map")
        return [j * (L // n) for j in range(1, n)]
    if strategy == "last":
        return [L - n + j for j in range(1, n)]
    raise ConfigError(f"PKD strategy {strategy!r}; accepted: {', '.join(STRATEGIES)}")


def pooled_states(hidden: Any, attention_mask: Any, pooled_token: str,
                  token_level: bool) -> Any:
    """The hidden states PKD compares, of one layer's output.

    Args:
        hidden: (B, T, H) hidden states.
        attention_mask: (B, T), 1 on real tokens.
        pooled_token: ``first`` or ``last`` (the family's ``pooled_token``).
        token_level: every real token (token classification) instead of one per row.

    Returns:
        (B, H) for sequence-level tasks, (M, H) with M real tokens for token-level.
    """
    import torch

    if token_level:
        return hidden[attention_mask.bool()]  # (M, H)
    if pooled_token == "first":
        return hidden[:, 0]  # (B, H)
    positions = torch.arange(hidden.shape[1], device=hidden.device)  # (T,)
    last = (attention_mask.long() * positions).argmax(dim=-1)  # (B,) last real token
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)


def patient_loss(student: Any, teacher: Any) -> Any:
    """Mean squared distance of the L2-normalised states (eq. 4, the official code's scale).

    Args:
        student, teacher: (k, N, H) pooled states of the k matched layers.
    """
    import torch.nn.functional as F

    return F.mse_loss(F.normalize(student.float(), dim=-1), F.normalize(teacher.float(), dim=-1))


class PatientLoss:
    """``loss_fn(outputs, batch)`` of the training loop for PKD: the teacher runs on the same
    batch (eval mode, no gradient) for its logits and hidden states.

    Attributes:
        model_kwargs: extra arguments of the student's forward pass (its hidden states).
    """

    model_kwargs = {"output_hidden_states": True}

    def __init__(self, teacher: Any, kind: Any, alpha: float, temperature: float, beta: float,
                 teacher_layers: list[int], pooled_token: str, runtime: Any):
        self.teacher, self.kind, self.runtime = teacher, kind, runtime
        self.alpha, self.temperature, self.beta = alpha, temperature, beta
        self.teacher_layers, self.pooled_token = teacher_layers, pooled_token

    def __call__(self, outputs: Any, batch: dict[str, Any]) -> Any:
        import torch

        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad(), self.runtime.autocast():
            t_out = self.teacher(**inputs, output_hidden_states=True)
        loss = self.kind.distill_loss(outputs.logits, t_out.logits.float(), batch, self.alpha,
                                      self.temperature)
        if not self.teacher_layers or self.beta == 0.0:
            return loss
        mask = batch.get("attention_mask")
        if mask is None:
            mask = torch.ones(batch["input_ids"].shape, device=outputs.logits.device)
        level = self.kind.token_level

        def states(hidden: tuple[Any, ...], layers: list[int]) -> Any:
            return torch.stack([pooled_states(hidden[m], mask, self.pooled_token, level)
                                for m in layers])  # (k, N, H)

        student = states(outputs.hidden_states, list(range(1, len(self.teacher_layers) + 1)))
        teacher = states(t_out.hidden_states, self.teacher_layers)
        return loss + self.beta * patient_loss(student, teacher)
