"""Run the reference connector from its folder, wherever that is (a checkout or an installed wheel):

    python path/to/connectors/reference/run.py sync [--flows a,b]

Manifests elsewhere point at this file with a path relative to their own directory (their working
directory), e.g. connectors/examples/accounts-only/connector.toml.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from syncert_reference.__main__ import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
