"""The order path as small services, each with one job; `fixgw.app` wires them."""
