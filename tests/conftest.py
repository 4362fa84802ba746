"""Test set-up: the tests run on the real MNIST / Fashion-MNIST files.

``GLIMPSE_DATA_DIR`` chooses the data folder. When it is unset and the project sits
beside a ``shared/data`` folder (as in this project's CI), that folder is used; else the
package's own rules apply (user cache, downloading through torchvision).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if not os.environ.get("GLIMPSE_DATA_DIR"):
    shared = ROOT.parent / "shared" / "data"
    if (shared / "MNIST" / "raw").is_dir():
        os.environ["GLIMPSE_DATA_DIR"] = str(shared)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from glimpse_env.data import resolve_data_dir

    return resolve_data_dir()
