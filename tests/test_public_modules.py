"""Every public module of both packages declares an explicit ``__all__`` that covers its API."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("engine", "actors")


def _public_modules() -> list[str]:
    names: list[str] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            names.append(info.name)
    return sorted(names)


def _defined_here(module: ModuleType) -> set[str]:
    """Public classes and functions whose home is this module."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("module_name", _public_modules())
def test_module_has_explicit_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, tuple), f"{module_name} has no explicit tuple __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not define: {missing}"
    undeclared = sorted(_defined_here(module) - set(exported))
    assert not undeclared, f"{module_name} defines public names missing from __all__: {undeclared}"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ has duplicates"


def test_packages_are_found() -> None:
    # Guards the test above against silently parametrizing over nothing.
    assert {"engine", "engine.errors", "actors"} <= set(_public_modules())
