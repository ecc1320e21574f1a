"""Connectors that misbehave on purpose: `python misbehaving.py hang|crash|idle|garbage`."""

import os
import subprocess
import sys
import time

behaviour = sys.argv[1]
if behaviour == "hang":
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])  # a grandchild that must die too
    time.sleep(300)
elif behaviour == "crash":
    print("connecting...")
    print("Traceback (most recent call last):\n  KeyError: 'Id'", file=sys.stderr)
    sys.exit(3)
elif behaviour == "garbage":
    sys.stdout.buffer.write(os.urandom(200_000))
    sys.exit(0)
# "idle": exit 0 having done nothing
