"""Tests of the optional extras (ray, serve): skipped where the extra is not
installed, except in CI (CI=true), which installs every extra and must run them."""
import importlib
import os

import pytest


def require(module: str):
    """The module, or a skip of the calling test module (a failure in CI)."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)
