"""Fixtures of the engine's service tests (`test_engine_*.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.engine_kit import Clock


@pytest.fixture
def clock() -> Iterator[Clock]:
    """An event loop on a clock of its own (`engine_kit.Clock`), closed after the test."""
    loop = Clock()
    yield loop
    loop.finish()
