"""The public surface: exactly what each public package's `__all__` lists, every export documented,
every documented namespace usable on first touch, and no submodule hiding a public name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import warnings
from types import ModuleType

import pytest

import modelmix as mm

PUBLIC_PACKAGES = (
    "modelmix",
    "modelmix.observability",
    "modelmix.resilience",
    "modelmix.providers",
    "modelmix.testing",
    "modelmix.tokens",
)
SUBPACKAGES = tuple(name.removeprefix("modelmix.") for name in PUBLIC_PACKAGES if name != "modelmix")

# Old error names kept for one release: reachable, warning, but no longer part of `__all__`.
DEPRECATED_ERRORS = {
    "ContentFilterError": "PromptFilteredError",
    "ContentFilteredError": "ResponseFilteredError",
    "StreamErrorEvent": "InBandStreamError",
}


def _run(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing imported yet) and return what it printed."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _package(name: str) -> ModuleType:
    return importlib.import_module(name)


def _sort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then everything else.
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _exports(name: str) -> list[str]:
    exported = getattr(_package(name), "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    return list(exported)


# ------------------------------------------------------------------------------ __all__


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_all_is_sorted_unique_and_importable(package: str) -> None:
    exported = _exports(package)
    assert exported == sorted(set(exported), key=_sort_key), f"{package}.__all__ must be sorted, each name once"
    module = _package(package)
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ lists {name!r} but it is not importable"


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_no_public_name_is_left_out_of_all(package: str) -> None:
    module = _package(package)
    public = {name for name, value in vars(module).items() if not name.startswith("_") and not inspect.ismodule(value)}
    assert public - set(_exports(package)) == set(), f"public names of {package} missing from __all__"


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_public_class_and_function_has_its_own_docstring(package: str) -> None:
    module = _package(package)
    undocumented = []
    for name in _exports(package):
        value = getattr(module, name)
        # A class's __doc__ is not inherited, so this catches a subclass that only borrows its parent's.
        if (inspect.isclass(value) or inspect.isroutine(value)) and not (value.__doc__ or "").strip():
            undocumented.append(name)
    assert undocumented == [], f"{package}: add docstrings to {undocumented}"


def test_lazy_names_resolve_to_their_objects_and_are_listed_by_dir() -> None:
    from modelmix.providers.azure import AzureModel
    from modelmix.resilience import fallback

    assert mm.fallback is fallback
    assert mm.AzureModel is AzureModel
    assert {"fallback", "AzureModel", "list_models", *SUBPACKAGES} <= set(dir(mm))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = mm.not_a_name


# ------------------------------------------------------------------------------ first touch


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_public_subpackages_work_on_first_touch(subpackage: str) -> None:
    # `import modelmix as mm; mm.resilience.Clock` must work in a fresh interpreter, with nothing
    # else having imported modelmix.resilience first.
    code = (
        "import modelmix as mm\n"
        f"package = mm.{subpackage}\n"
        "missing = [name for name in package.__all__ if not hasattr(package, name)]\n"
        "print(package.__name__, missing)\n"
    )
    assert _run(code) == f"modelmix.{subpackage} []"


def test_every_top_level_name_works_on_first_touch() -> None:
    code = (
        "import modelmix as mm\n"
        "values = {name: getattr(mm, name) for name in mm.__all__}\n"
        "print(sorted(name for name, value in values.items() if value is None))\n"
    )
    assert _run(code) == "[]"


def test_first_touch_examples_from_the_docs() -> None:
    code = "import modelmix as mm\nprint(mm.resilience.Clock.__name__, mm.testing.FakeOpenAIServer.__name__)"
    assert _run(code) == "Clock FakeOpenAIServer"


def test_importing_modelmix_does_not_import_providers_or_optional_extras() -> None:
    # Providers and subpackages load lazily, so `import modelmix` stays cheap.
    heavy = (
        "modelmix.providers.openai",
        "modelmix.providers.azure",
        "modelmix.resilience",
        "modelmix.testing",
        "tenacity",
        "llama_cpp",
        "azure.identity",
        "aiohttp",
        "tiktoken",
        "importlib.metadata",
        "difflib",
    )
    code = f"import sys, modelmix; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    assert _run(code) == ""


# ------------------------------------------------------------------------------ shadowing


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_no_public_name_is_also_a_submodule_name(package: str) -> None:
    # `import modelmix.resilience.fallback` must not be able to mean both a module and a function.
    module = _package(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert set(_exports(package)) & submodules == set(), f"{package}: rename these submodules private"


def test_importing_every_submodule_changes_no_public_name() -> None:
    # Importing a submodule binds it on its parent package; it must never replace a public name.
    packages = repr(PUBLIC_PACKAGES)
    code = (
        "import importlib, pkgutil, modelmix\n"
        f"packages = [importlib.import_module(name) for name in {packages}]\n"
        "before = {(p.__name__, n): getattr(p, n) for p in packages for n in p.__all__}\n"
        "for info in pkgutil.walk_packages(modelmix.__path__, 'modelmix.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "now = {(p.__name__, n): getattr(p, n) for p in packages for n in p.__all__}\n"
        "print(sorted(f'{p}.{n}' for (p, n), value in before.items() if now[p, n] is not value))\n"
    )
    assert _run(code) == "[]"


# ------------------------------------------------------------------------------ deprecated names


@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED_ERRORS.items()))
def test_deprecated_error_names_warn_and_still_catch(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"modelmix.{old} is deprecated.*modelmix.{new}"):
        alias = getattr(mm, old)
    replacement = getattr(mm, new)
    assert alias is replacement, "the old name is the same class, so except/isinstance keep working"
    assert old not in mm.__all__
    assert new in mm.__all__
    with pytest.warns(DeprecationWarning, match="ContentFilterError is deprecated"):
        from modelmix import ContentFilterError  # noqa: F401 - `from` imports warn too
    error = replacement("filtered", status=400) if issubclass(replacement, mm.APIStatusError) else replacement("x")
    with pytest.raises(alias):
        raise error


def test_deprecated_names_point_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning, match="StreamErrorEvent") as caught:
        _ = mm.StreamErrorEvent
    assert caught[0].filename == __file__


def test_internal_modules_use_the_old_names_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from modelmix._exceptions import ContentFilteredError, ContentFilterError, StreamErrorEvent

    assert (ContentFilterError, ContentFilteredError, StreamErrorEvent) == (
        mm.PromptFilteredError,
        mm.ResponseFilteredError,
        mm.InBandStreamError,
    )
