"""Training: the one runtime (device, precision, processes), the shared training
loop, divergence guards, the run log, multi-process launch and vanilla KD."""
