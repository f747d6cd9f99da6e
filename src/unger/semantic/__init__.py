"""Semantic side of Stage I: item texts and the pretrained encoders that embed them (no Kedro)."""
