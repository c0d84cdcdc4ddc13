"""Training step time by precision (and optionally torch.compile) through theseus's runtime.

Times optimizer steps (forward, backward, AdamW step) of a BERT classifier on
random token batches, through ``theseus_cli.train.runtime.Runtime`` exactly as the
stages use it (Accelerate mixed precision, ``--compile`` via its dynamo plugin).
Prints a Markdown table: median seconds per step, and speed relative to fp32.

    OMP_NUM_THREADS=1 python benchmarks/precision_cpu.py                 # cpu, tiny + embedded
    python benchmarks/precision_cpu.py --device cuda --precisions no,fp16,bf16 --compile
"""

from __future__ import annotations

import argparse
import statistics
import time


def build(model_name: str):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    if model_name == "tiny":  # the test-suite's shape: 4 layers, hidden 32
        torch.manual_seed(0)
        return BertForSequenceClassification(BertConfig(
            vocab_size=300, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=128))
    from theseus_cli.data.glue import get_task
    from theseus_cli.model import loading as models

    model, _ = models.load_predecessor(model_name, get_task("MRPC"))
    return model


def time_steps(model_name: str, device: str, precision: str, compile: bool, batch: int,
               seq: int, steps: int, warmup: int) -> float:
    import torch

    from theseus_cli.train.runtime import Runtime

    runtime = Runtime(device, precision, seed=0, compile=compile)
    model = build(model_name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model, optimizer = runtime.prepare(model, optimizer)
    vocab = runtime.unwrap(model).config.vocab_size
    gen = torch.Generator().manual_seed(0)
    data = {"input_ids": torch.randint(0, vocab, (batch, seq), generator=gen),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long),
            "labels": torch.randint(0, 2, (batch,), generator=gen)}
    data = {k: v.to(runtime.device) for k, v in data.items()}
    model.train()
    times = []
    for i in range(warmup + steps):
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(**data).loss
        runtime.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny,embedded")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", default="no,bf16")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()

    import torch

    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"batch {args.batch} x {args.seq} tokens, median of {args.steps} steps "
          f"after {args.warmup} warm-up\n")
    print("| model | precision | compile | s / step | vs fp32 |")
    print("|---|---|---|---|---|")
    for model_name in args.models.split(","):
        base = None
        for compile in ([False, True] if args.compile else [False]):
            for precision in args.precisions.split(","):
                s = time_steps(model_name, args.device, precision, compile, args.batch,
                               args.seq, args.steps, args.warmup)
                base = s if base is None else base
                print(f"| {model_name} | {precision} | {'yes' if compile else 'no'} | {s:.4f} | "
                      f"{base / s:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
