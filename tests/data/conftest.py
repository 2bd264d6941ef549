"""Fixtures of the data tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def cfg(smoke_params):
    """IngestConfig factory: the smoke params' ingest section with `source` and overrides."""

    def make(source, **kw):
        return smoke_params.ingest.model_copy(update={"source": str(source), **kw})

    return make
