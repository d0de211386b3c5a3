"""The package layout promise: operator/ is a source root, never a package."""

from __future__ import annotations

import importlib.util
import operator
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_directory_has_no_init() -> None:
    assert (ROOT / "operator" / "suanli" / "__init__.py").exists()
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_import_operator_is_still_the_standard_library() -> None:
    assert hasattr(operator, "itemgetter")
    origin = Path(str(operator.__file__)).resolve()
    assert origin.parent == Path(sys.modules["os"].__file__ or "").resolve().parent
    spec = importlib.util.find_spec("operator")
    assert spec is not None and spec.origin is not None
    assert not spec.origin.startswith(str(ROOT / "operator"))


def test_the_placement_core_is_compiled() -> None:
    import suanli.placement._core as core

    assert Path(str(core.__file__)).suffix == ".so", core.__file__
