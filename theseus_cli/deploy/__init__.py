"""Deployment: ONNX and int8 export run by ONNX Runtime, latency and throughput measurements."""
