"""evaluate: score the trained model on the held-out test split (the stage is in stage.py)."""

from components.evaluate.stage import evaluate, generate, run

__all__ = ["evaluate", "generate", "run"]
