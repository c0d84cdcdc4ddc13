"""The store: immutable, versioned artifacts with manifests and seals (Kedro/DVC
style), their integrity checks, strict JSON, run locks and training checkpoints."""
