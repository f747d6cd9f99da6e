"""Ranking metrics and evaluation helpers."""
