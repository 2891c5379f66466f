"""Errors a user can cause and fix: the CLI and server show their message, never a traceback."""

from __future__ import annotations


class LayerscopeError(Exception):
    """Base class: the message is written for the person who caused it."""


class InputError(LayerscopeError, ValueError):
    """A request that cannot be traced as given (empty prompt, too long, invalid ids...)."""


class ModelNotFoundError(LayerscopeError, LookupError):
    """An unknown model name or a path that holds no loadable model."""


class ModelLoadError(LayerscopeError, RuntimeError):
    """Weights or tokenizer that exist but cannot be loaded (corrupt, truncated, unsupported)."""


class MissingPackageError(LayerscopeError, ImportError):
    """A package this model needs is not installed; the message says how to get it."""


class TraceFileError(LayerscopeError, ValueError):
    """A saved trace file that cannot be read: not a trace, corrupt, or from a newer version."""
