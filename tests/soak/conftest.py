"""The soak tests' session fixture; the helpers live in soak_helpers (importable by the test modules)."""

from soak_helpers import returns  # noqa: F401
