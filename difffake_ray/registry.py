"""A tiny name -> factory registry, in the style of timm's ``register_model``.

Each swappable part (face detectors, landmarkers, mask generators, feature combinations, anomaly
models, dataset adapters) owns one ``Registry``; a new implementation is one decorated function or
class in one file. Plug-in modules are imported lazily by name so that importing the package stays
cheap and a broken optional dependency only fails the part that needs it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional


def parameters(factory: Callable[..., Any]) -> List[str]:
    """The names a factory takes: a class's constructor parameters, or a function's."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    return [p for p in inspect.signature(target).parameters if p != "self"]


class Registry:
    def __init__(self, kind: str, modules: Optional[Dict[str, str]] = None):
        self.kind = kind
        self._factories: Dict[str, Callable[..., Any]] = {}
        # name -> module that registers it when imported (lazy plug-ins)
        self._modules: Dict[str, str] = dict(modules or {})

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list:
        return sorted(set(self._factories) | set(self._modules))

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._factories and name in self._modules:
            importlib.import_module(self._modules[name])
        try:
            return self._factories[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none)'}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def create_from(self, name: str, options: Mapping[str, Any]) -> Any:
        """``name`` made with those of ``options`` it takes: a config section offers every
        implementation's settings, each takes its own (a factory still refuses a name it lacks
        when called directly)."""
        factory = self.get(name)
        taken = set(parameters(factory))
        return factory(**{k: v for k, v in options.items() if k in taken})

    def __contains__(self, name: str) -> bool:
        return name in self._factories or name in self._modules

    def __iter__(self) -> Iterable[str]:
        return iter(self.names())
