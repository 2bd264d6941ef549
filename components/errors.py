"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class GanopsError(Exception):
    """Base class: a failure whose message is the whole story (no traceback needed)."""

    exit_code = 1


class ConfigError(GanopsError):
    """A params file or override is wrong; the message names the key."""

    exit_code = 2


class DataError(GanopsError):
    """The input data cannot be read or is malformed; the message names the file."""


class ValidationFailed(GanopsError):
    """The Great Expectations gate failed; the message lists each failed expectation."""


class TrainingDiverged(GanopsError):
    """A loss or gradient became NaN/inf."""


class RegistryError(GanopsError):
    """A registry operation cannot be done (no such version, no alias to roll back to)."""


class TrainingInterrupted(GanopsError):
    """SIGINT/SIGTERM stopped training after a step; a checkpoint was kept for resume."""

    exit_code = 130
