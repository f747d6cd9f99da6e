"""Kedro-free torch models: Stage I fusion (DIN + modality adaptation layer) and later-stage models."""
