"""Kedro-free training loops (device and metric logging passed in; checkpoints are plain dicts)."""
