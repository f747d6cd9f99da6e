"""Analyses of learned representations, e.g. the semantic dominance study of paper section 4.3 (no Kedro)."""
