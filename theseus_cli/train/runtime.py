"""The one runtime object every stage runs in: device, precision, processes, seeds.

It is a thin owner of an :class:`accelerate.Accelerator`; Accelerate does the
device placement, mixed precision (fp16 with loss scaling, bf16), gradient
accumulation and multi-process data sharding. Stages never touch devices
directly.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from theseus_cli.errors import DeviceError
from theseus_cli.train.cpu_threads import apply_threads, first_run_warning

DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("no", "fp16", "bf16")


def available_devices() -> list[str]:
    """Devices usable on this machine, best first (``cpu`` always)."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


class Runtime:
    """Device, mixed precision, seeding and gradient accumulation for a run.

    Args:
        device: ``auto`` (cuda, then mps, then cpu), ``cuda``, ``mps`` or ``cpu``.
        precision: ``no`` (fp32), ``fp16`` (with loss scaling; needs cuda) or ``bf16``.
        seed: seeds Python, NumPy and torch (all processes) via Accelerate.
        gradient_accumulation_steps: micro-batches per optimizer step.
        compile: ``torch.compile`` every prepared model (Accelerate's dynamo
            plugin, backend ``inductor``).
        report_to: experiment trackers (Accelerate's): any of :data:`TRACKERS`; empty:
            none. Each stage run is one tracked run (:meth:`start_tracking`).
        tracking_dir: where file-based trackers write (TensorBoard event files).
        threads: PyTorch's intra-op CPU threads in this process (``torch.set_num_threads``);
            None: PyTorch's default, one per core (:mod:`theseus_cli.train.cpu_threads`).

    Several processes (``accelerate launch``, ``torchrun`` or
    ``theseus <stage> --num-processes N``) are picked up from the environment
    Accelerate reads; on cpu they talk over gloo.

    Raises:
        DeviceError: an unknown value (lists the accepted ones), a device /
            precision this machine does not have (lists what it has), or
            ``compile`` where torch.compile cannot work (no C++ compiler on cpu,
            unsupported Python).
    """

    def __init__(self, device: str = "auto", precision: str = "no", seed: int = 42,
                 gradient_accumulation_steps: int = 1, compile: bool = False,
                 report_to: tuple[str, ...] = (), tracking_dir: Any = None,
                 threads: int | None = None):
        if device not in DEVICES:
            raise DeviceError(f"invalid device {device!r}; accepted: {', '.join(DEVICES)}")
        if precision not in PRECISIONS:
            raise DeviceError(f"invalid precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
        have = available_devices()
        if device != "auto" and device not in have:
            raise DeviceError(f"device {device!r} is not available on this machine; "
                              f"available: {', '.join(have)}")
        chosen = have[0] if device == "auto" else device
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise DeviceError(f"invalid threads {threads!r}; accepted: a whole number >= 1, "
                              "or None for PyTorch's default (one per core)")
        if precision == "fp16" and chosen == "cpu":
            raise DeviceError("precision 'fp16' needs a GPU (cuda or mps); on cpu use 'bf16' or 'no'")
        if compile:
            _check_compile(chosen)
        report_to = check_trackers(report_to)
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState, GradientState

        # a fresh state per runtime, so one process can run several stages/tests
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
        self.accelerator = Accelerator(
            cpu=chosen == "cpu", mixed_precision=precision,
            gradient_accumulation_steps=gradient_accumulation_steps,
            dynamo_backend="inductor" if compile else None,
            log_with=list(report_to) or None, project_dir=tracking_dir,
        )
        self.threads = apply_threads(threads)
        self.report_to, self._tracking = report_to, False
        self.device_name, self.precision, self.seed = chosen, precision, seed
        self.gradient_accumulation_steps, self.compile = gradient_accumulation_steps, compile

    # -- facts ---------------------------------------------------------------
    @property
    def device(self) -> Any:
        """The ``torch.device`` of this process."""
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index

    def describe(self) -> dict[str, Any]:
        """What this runtime is, for manifests."""
        return {"device": self.device_name, "precision": self.precision, "seed": self.seed,
                "num_processes": self.num_processes, "compile": self.compile,
                "threads": self.threads,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    def cpu_contention(self) -> str | None:
        """A warning when other processes already keep busy the cores this run's threads
        are about to use (:func:`~theseus_cli.train.cpu_threads.first_run_warning`: on cpu,
        measured once per process), else None. The processes of one launched run share the
        cores by design, so a run of several processes is not checked."""
        if self.num_processes > 1:
            return None
        return first_run_warning(self.device_name, self.threads)

    # -- actions -------------------------------------------------------------
    def seed_everything(self, offset: int = 0) -> None:
        """Seed Python, NumPy and torch with ``seed + offset`` (same on every process)."""
        from accelerate.utils import set_seed

        set_seed(self.seed + offset)

    def prepare(self, *objects: Any, find_unused_parameters: bool = False) -> Any:
        """Place models/optimizers/dataloaders/schedulers (Accelerate ``prepare``).

        Args:
            find_unused_parameters: models are wrapped in DDP (several
                processes) with ``find_unused_parameters=True``; needed when a
                step leaves some trainable parameters out of the graph (module
                replacing), and slower, so off by default.
        """
        from accelerate.utils import DistributedDataParallelKwargs

        self.accelerator.ddp_handler = (DistributedDataParallelKwargs(find_unused_parameters=True)
                                        if find_unused_parameters else None)
        return self.accelerator.prepare(*objects)

    def skip_first_batches(self, loader: Any, num_batches: int) -> Any:
        """A prepared dataloader that yields from batch ``num_batches`` on (resume)."""
        return self.accelerator.skip_first_batches(loader, num_batches)

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value`` on every process (picklable; collective)."""
        if self.num_processes == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]

    @property
    def scaler(self) -> Any:
        """The fp16 loss scaler (``torch.amp.GradScaler``), else None."""
        return getattr(self.accelerator, "scaler", None)

    def accumulate(self, model: Any) -> AbstractContextManager:
        """Context for one micro-batch; optimizer steps happen every N micro-batches."""
        return self.accelerator.accumulate(model)

    @property
    def sync_gradients(self) -> bool:
        """True on the micro-batch that completes an optimizer step."""
        return self.accelerator.sync_gradients

    def backward(self, loss: Any) -> None:
        self.accelerator.backward(loss)

    def clip_grad_norm_(self, parameters: Any, max_norm: float) -> Any:
        return self.accelerator.clip_grad_norm_(parameters, max_norm)

    def autocast(self) -> AbstractContextManager:
        return self.accelerator.autocast()

    def gather_for_metrics(self, tensor: Any) -> Any:
        """Gather across processes, dropping the duplicated tail samples."""
        return self.accelerator.gather_for_metrics(tensor)

    def pad_across_processes(self, tensor: Any, dim: int, pad_index: float) -> Any:
        """``tensor`` padded along ``dim`` to the longest of every process (so token-level
        batches of different lengths can be gathered), with ``pad_index``."""
        if self.num_processes == 1:
            return tensor
        return self.accelerator.pad_across_processes(tensor, dim=dim, pad_index=pad_index)

    def unwrap(self, model: Any) -> Any:
        """The model without its DDP / torch.compile wrappers (mixed precision kept)."""
        return self.accelerator.unwrap_model(model, keep_torch_compile=False)

    def any_process(self, flag: bool) -> bool:
        """True on every process if ``flag`` is True on any (collective when several)."""
        if self.num_processes == 1:
            return bool(flag)
        import torch

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        return bool(self.accelerator.reduce(t, reduction="sum").item() > 0)

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    # -- experiment trackers (off unless report_to names some) --------------------
    def start_tracking(self, run_name: str, config: dict[str, Any]) -> None:
        """Open one tracked run (TensorBoard: a subdirectory ``run_name`` of the tracking
        dir) with its hyper-parameters ``config`` (flat str/number/bool values)."""
        if self.report_to:
            self.accelerator.init_trackers(run_name, config=config)
            self._tracking = True

    def track(self, values: dict[str, Any], step: int | None = None) -> None:
        """Log the numeric ``values`` at optimizer step ``step`` to every tracker
        (nothing when tracking is off)."""
        if self._tracking:
            numbers = {k: float(v) for k, v in values.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if numbers:
                self.accelerator.log(numbers, step=step)

    def end_tracking(self) -> None:
        """Close the tracked run (flushes the trackers)."""
        if self._tracking:
            self.accelerator.end_training()
            self._tracking = False


#: experiment trackers ``--report-to`` accepts (Accelerate's names) -> the package each needs
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def check_trackers(report_to: Any) -> tuple[str, ...]:
    """``"tensorboard,wandb"`` (or a sequence; ``none``/empty: no tracker) -> the names.

    Raises:
        DeviceError: an unknown tracker (lists the accepted ones) or one whose package
            is not installed (names it).
    """
    import importlib.util

    names = ([n.strip() for n in report_to.split(",")] if isinstance(report_to, str)
             else list(report_to or ()))
    names = [n for n in names if n and n != "none"]
    for n in names:
        if n not in TRACKERS:
            raise DeviceError(f"--report-to {n!r}: unknown tracker; accepted: none, "
                              + ", ".join(TRACKERS))
        if importlib.util.find_spec(TRACKERS[n]) is None:
            raise DeviceError(f"--report-to {n}: the package {TRACKERS[n]!r} is not installed; "
                              f"`pip install {TRACKERS[n]}` (trackers are optional)")
    return tuple(dict.fromkeys(names))


def _check_compile(device: str) -> None:
    """Fail early, with a clear message, where torch.compile cannot work."""
    import shutil

    import torch._dynamo

    supported = getattr(torch._dynamo, "is_dynamo_supported", lambda: True)
    if not supported():
        raise DeviceError("--compile: torch.compile is not supported with this Python/torch; "
                          "run without --compile")
    if device == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise DeviceError("--compile on cpu needs a C++ compiler (g++ or clang++) for "
                          "torch.compile's inductor backend; install one or run without --compile")
