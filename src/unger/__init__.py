"""UNGER: generative recommendation with a unified semantic + collaborative item code."""

__version__ = "0.1.0"
