"""Settings shared by every test tier."""

from __future__ import annotations

import logging

# py4j logs "Closing down clientserver connection" at interpreter exit, after pytest closed its streams,
# which prints "--- Logging error ---" below the test summary
logging.getLogger("py4j").setLevel(logging.WARNING)
