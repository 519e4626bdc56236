"""Fixtures of the script tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def model_path(trained_models, tmp_path_factory):
    """The 8x8 digits CNN (Keras 3) saved as a .keras file."""
    path = tmp_path_factory.mktemp("model") / "digits8.keras"
    trained_models["keras3"].save(path)
    return path
