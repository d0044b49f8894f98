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


def test_no_resilience_module_is_over_600_lines() -> None:
    from pathlib import Path

    for path in Path(resilience.__file__).parent.glob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 600, f"{path.name} has {lines} lines"


def test_wrappers_name_what_they_wrap_and_forward_nothing_else() -> None:
    import modelmix as mm
    from modelmix.resilience import WrapperModel
    from modelmix.testing import FunctionModel

    bare = FunctionModel(lambda messages, settings: "ok", name="f", context_window=4096)
    retried = mm.retrying(mm.circuit_breaker(bare))
    hedged = mm.hedge(retried, FunctionModel(lambda messages, settings: "b"), after=1.0)
    for wrapper in (retried, hedged):
        assert isinstance(wrapper, WrapperModel)
        assert wrapper.unwrap() is bare
        assert (wrapper.provider, wrapper.name, wrapper.endpoint, wrapper.context_window) == (
            "function",
            "f",
            bare.endpoint,
            4096,
        )
        assert "__getattr__" not in vars(type(wrapper))
    assert retried.wrapped is bare
    assert not hasattr(retried, "calls")  # FunctionModel's own attribute is not forwarded
    assert retried.unwrap().chat("hi").text == "ok"
