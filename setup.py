"""Compiles the per-order and market-data path with mypyc; everything else is in pyproject.toml.

mypyc turns these modules, type hints and all, into one C extension (`fixgw/_native__mypyc`)
that CPython imports in place of the `.py` files beside it. `FIXGW_COMPILE=0` builds pure
Python. The modules left out either are not on the hot path or use what mypyc does not
compile: msgspec Structs with class options (domain, config, api.protocol), QuickFIX's SWIG
director (session, bridge.acceptor), and the simulator.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    "fixgw/api/book_views.py",
    "fixgw/api/server.py",
    "fixgw/bus.py",
    "fixgw/codetable.py",
    "fixgw/engine/ack_watchdog.py",
    "fixgw/engine/inbound.py",
    "fixgw/engine/order_entry.py",
    "fixgw/engine/order_events.py",
    "fixgw/engine/pending.py",
    "fixgw/engine/risk.py",
    "fixgw/engine/throttle_queue.py",
    "fixgw/engine/tracker.py",
    "fixgw/engine/order_index.py",
    "fixgw/engine/restore.py",
    "fixgw/engine/transitions.py",
    "fixgw/engine/venue_reports.py",
    "fixgw/fix/codes.py",
    "fixgw/fix/message.py",
    "fixgw/fix/qf.py",
    "fixgw/fix/qfpoll.py",
    "fixgw/fix/reader.py",
    "fixgw/fix/tags.py",
    "fixgw/gateway.py",
    "fixgw/ids.py",
    "fixgw/journal.py",
    "fixgw/marketdata/backoff.py",
    "fixgw/marketdata/book.py",
    "fixgw/marketdata/holds.py",
    "fixgw/marketdata/streams.py",
    "fixgw/ops/logging.py",
    "fixgw/ops/tally.py",
    "fixgw/venues/fix44/inbound.py",
    "fixgw/venues/fix44/outbound.py",
    "fixgw/venues/okcoin/enums.py",
    "fixgw/venues/okcoin/inbound.py",
    "fixgw/venues/okcoin/outbound.py",
    "fixgw/venues/okcoin/tags.py",
    "fixgw/venues/okcoin/venue.py",
    "fixgw/wire.py",
]


def ext_modules() -> list[object]:
    if os.environ.get("FIXGW_COMPILE", "1") == "0":
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3", group_name="fixgw._native"))


setup(ext_modules=ext_modules())
