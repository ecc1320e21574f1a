"""The reference connector's unit tests import `syncert_reference` from the directory above them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
