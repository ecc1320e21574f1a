"""`python -m syncert` is the `syncert` command."""

import sys

from syncert.harness.cli import main

sys.exit(main())
