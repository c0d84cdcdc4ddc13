"""Inference speed of each successor type against the teacher, side by side in one run.

The successors are built exactly as the ``replace`` stage builds them (the successor
builder plugins, ``SuccessorBuilder.build`` on the predecessor's layers, then the
family's ``build_successor``) from the embedded predecessor (6-layer MiniLM BERT,
hidden 384), at about half its layer parameters each, the settings of the README's
comparison (``runs/gpu-successor-types.sh``):

    first-n      n = 3 whole layers
    head-pruned  n = 3, 9 of 12 heads per layer (Michel et al. importance on 8 MRPC
                 training batches of the predecessor)
    narrow-ffn   n = 6, 384 of 1536 feed-forward neurons per layer
    low-rank     n = 6, every linear map at rank 128 (rank_fraction 1/3)

Weights do not change the speed of a forward pass, so the models are untrained. Each
model runs forward (inference mode, eval) over the same real MRPC dev batches: batch 64
(the ``evaluate`` stage's setting, all 408 dev examples, or ``--dev-batches``) and batch
1 (the first ``--single`` dev examples one by one). Passes are interleaved model by model
and repeated; the table gives the median seconds per pass and the speed-up over the
teacher (teacher median / model median). Parameters are counted in millions, all and in
the Transformer layers.

    python benchmarks/successor_types.py --markdown      # ~4 min on 2 cores
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
from pathlib import Path

from report import cpu_model, embedded_mrpc, table

from theseus_cli.data.sources import checkout_glue_dir

TYPES = [  # (row label, builder name, modules n, builder arguments)
    ("first-n, 3 layers", "first-n", 3, {}),
    ("head-pruned, 3 layers × 9 heads", "head-pruned", 3, {"head_fraction": 0.75}),
    ("narrow-ffn, 6 layers × 384 neurons", "narrow-ffn", 6, {"ffn_fraction": 0.25}),
    ("low-rank, 6 layers, rank 128", "low-rank", 6, {"rank_fraction": 1 / 3}),
]


def build(teacher, tokenizer, train, name: str, n: int, args: dict):
    """The successor the ``replace`` stage would assemble with builder ``name``."""
    from theseus_builtin.stages.replace import calibration
    from theseus_cli.plugin import registry
    from theseus_cli.plugin.registry import family_of

    cls = registry.successor_builder(name)
    builder = cls(cls.Params(**args))
    family = family_of(teacher)
    builder.family = family
    if builder.calibration_batches():
        builder.calibration = calibration(teacher, tokenizer, train, 32,
                                          builder.calibration_batches(), "cpu")
    modules = builder.build(family.layers(teacher), n)
    return family.build_successor(teacher, modules, builder).eval()


def parameters(model) -> tuple[float, float]:
    """(all, Transformer layers) parameters, millions."""
    from theseus_cli.plugin.registry import family_of

    layers = family_of(model).layers(model)
    return (sum(p.numel() for p in model.parameters()) / 1e6,
            sum(p.numel() for layer in layers for p in layer.parameters()) / 1e6)


def timed(model, batches) -> float:
    import torch

    with torch.inference_mode():
        t0 = time.perf_counter()
        for b in batches:
            model(**b)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--glue-dir", default=checkout_glue_dir(Path(__file__).resolve().parents[1]),
                    help="GLUE in its TSV layout; default: $THESEUS_GLUE_DIR, else ../shared/glue "
                         "beside the repository")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes per model and batch size")
    ap.add_argument("--dev-batches", type=int, default=None,
                    help="dev batches of 64 per pass; default: all (408 examples)")
    ap.add_argument("--single", type=int, default=64, help="dev examples timed at batch 1")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    wall0, load0 = time.monotonic(), os.getloadavg()
    task, teacher, tokenizer = embedded_mrpc(args.threads)
    import torch

    from theseus_cli.data import load_split, make_dataloader, tokenize_split

    teacher.eval()

    def split(s):
        return tokenize_split(load_split(task, s, args.glue_dir), tokenizer, task,
                              task.max_seq_length)

    train, dev = split("train"), split("dev")

    def strip(b):
        return {k: v for k, v in b.items() if k != "labels"}

    big = [strip(b) for b in make_dataloader(dev, tokenizer, 64, False)][:args.dev_batches]
    one = [strip(b) for b in make_dataloader(dev.select(range(args.single)), tokenizer, 1, False)]
    models = {"teacher (6 layers)": teacher}
    for label, name, n, kwargs in TYPES:
        models[label] = build(teacher, tokenizer, train, name, n, kwargs)
    seconds = {(m, b): [] for m in models for b in ("big", "one")}
    for m in models.values():  # warm-up, untimed
        timed(m, big[:1]), timed(m, one[:4])
    for r in range(args.repeats):
        order = list(models)[r % len(models):] + list(models)[:r % len(models)]
        for label in order:
            seconds[label, "big"].append(timed(models[label], big))
            seconds[label, "one"].append(timed(models[label], one))
    med = {k: statistics.median(v) for k, v in seconds.items()}
    t = "teacher (6 layers)"
    rows = []
    for label, model in models.items():
        total, layers = parameters(model)
        rows.append([label, f"{total:.1f}", f"{layers:.2f}",
                     f"{med[label, 'big']:.3f}", f"{med[t, 'big'] / med[label, 'big']:.2f}×",
                     f"{1000 * med[label, 'one'] / len(one):.1f}",
                     f"{med[t, 'one'] / med[label, 'one']:.2f}×"])
    headers = ["model", "params (M)", "layer params (M)",
               f"batch 64: s per pass ({sum(b['input_ids'].shape[0] for b in big)} ex.)",
               "speed-up", "batch 1: ms per example", "speed-up"]
    print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; MRPC dev, {args.repeats} interleaved passes per "
          f"model after a warm-up, median; load average {load0[0]:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end; {time.monotonic() - wall0:.0f} s in all\n")
    print(table(headers, rows, args.markdown))


if __name__ == "__main__":
    main()
