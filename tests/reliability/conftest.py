"""Fixtures of the reliability tests: the hostile-note site."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.hostile import HostileSite, hostile_site


@pytest.fixture
def hostile() -> Iterator[HostileSite]:
    with hostile_site() as site:
        yield site
