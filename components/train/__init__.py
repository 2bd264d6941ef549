"""train: fit a GAN on the processed train split (the stage itself is in stage.py)."""

from components.train.stage import run

__all__ = ["run"]
