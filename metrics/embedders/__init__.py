"""Face embedders for ACD behind one interface, registered by name.

``create_embedder("dlib")`` (the default) or ``create_embedder("facenet", weights_path=...)``.
Each embedder lives in its own module and registers itself with ``@register_embedder(name)``;
heavy libraries (dlib, torch) are imported only when an embedder is constructed, so importing
``metrics`` stays light.
"""
from __future__ import annotations

from collections.abc import Callable

from .base import Embedder, FrameEmbeddings, MissingWeightsError, as_uint8_frames

DEFAULT_EMBEDDER = "dlib"

_EMBEDDERS: dict[str, type[Embedder]] = {}


def register_embedder(name: str) -> Callable[[type[Embedder]], type[Embedder]]:
    """Class decorator: make an Embedder subclass available as ``create_embedder(name)``."""
    def register(cls: type[Embedder]) -> type[Embedder]:
        if not (isinstance(cls, type) and issubclass(cls, Embedder)):
            raise TypeError(f"{cls!r} is not an Embedder subclass")
        if name in _EMBEDDERS and _EMBEDDERS[name] is not cls:
            raise ValueError(f"embedder {name!r} is already registered")
        cls.name = name
        _EMBEDDERS[name] = cls
        return cls
    return register


def is_valid_embedder(name: str) -> bool:
    return name in _EMBEDDERS


def list_embedders() -> list[str]:
    return sorted(_EMBEDDERS)


def create_embedder(name: str = DEFAULT_EMBEDDER, **kwargs) -> Embedder:
    """Construct the embedder registered as ``name`` with its keyword arguments."""
    if name not in _EMBEDDERS:
        raise ValueError(f"unknown embedder {name!r}; choose one of {list_embedders()}")
    return _EMBEDDERS[name](**kwargs)


# Importing the modules registers them (they import dlib / torch lazily).
from . import dlib_resnet, facenet  # noqa: E402,F401

__all__ = [
    "DEFAULT_EMBEDDER", "Embedder", "FrameEmbeddings", "MissingWeightsError", "as_uint8_frames",
    "create_embedder", "is_valid_embedder", "list_embedders", "register_embedder",
]
