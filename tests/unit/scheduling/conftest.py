"""Run every cycle test against each available cluster-state implementation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .helpers import CLASSES, implementations


@pytest.fixture(params=implementations(), ids=lambda cls: cls.__module__.rsplit(".", 1)[-1])
def new_state(request: pytest.FixtureRequest) -> Callable[[], object]:
    state_class = request.param

    def build() -> object:
        return state_class(CLASSES)

    return build
