"""syncert: certify ERP<->CRM sync connectors against simulated vendor APIs.

The one import package syncert installs. The repository keeps the layout's top-level folders and
pyproject.toml maps each into this package: `syncert.simulators` is `simulators/`, `syncert.harness`
is `harness/`, and likewise `contracts/`, `scenarios/` and `connectors/`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("syncert")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "unknown"
