"""`python -m daraja.simulator --host 127.0.0.1 --port 8001`: the simulator as its own server."""

import sys

from daraja.simulator.server import main

sys.exit(main())
