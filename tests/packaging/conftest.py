"""The frozen-app tests build the installers (minutes), so they run only when asked: ``-m packaging``
(``make test-packaging``, which CI runs after ``make test``); otherwise they are skipped with that hint."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expr = config.getoption("markexpr") or ""
    if "packaging" in expr and "not packaging" not in expr:
        return
    skip = pytest.mark.skip(reason="builds the Linux bundle and installers (minutes): run `make test-packaging`")
    for item in items:
        if item.get_closest_marker("packaging"):
            item.add_marker(skip)
