"""The public surface of `modelmix.resilience`: exports, no shadowed names, wrappers that compose."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import modelmix.resilience as resilience


def test_no_public_name_is_also_a_submodule() -> None:
    # A submodule sharing a public function's name replaces it on the package whenever the
    # submodule is (re)imported, and makes `mock.patch("modelmix.resilience.fallback...")` ambiguous.
    submodules = {info.name for info in pkgutil.iter_modules(resilience.__path__)}
    assert not submodules & set(resilience.__all__)
    for name in ("fallback", "hedge", "retrying"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"modelmix.resilience.{name}")
        value = getattr(resilience, name)
        assert inspect.isfunction(value), f"modelmix.resilience.{name} is {value!r}"


def test_every_export_exists_and_is_documented() -> None:
    for name in resilience.__all__:
        value = getattr(resilience, name)
        assert inspect.getdoc(value), f"modelmix.resilience.{name} has no docstring"
