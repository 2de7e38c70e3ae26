"""NATS JetStream: the gateway's events to a stream, commands by request/reply, market data
on plain subjects (docs/nats.md). Optional: `pip install fixgw[nats]`.

Only `transport`, `consumer` and `client` import the NATS client (nats-py); the rest of this
package, and the rest of fixgw, run without it.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'fixgw[nats]'"


def client_missing() -> str | None:
    """Why the NATS client cannot be used here, or None."""
    try:
        found = importlib.util.find_spec("nats") is not None
    except ImportError:
        found = False
    return None if found else f"the NATS client (nats-py) is not installed: {INSTALL_HINT}"
