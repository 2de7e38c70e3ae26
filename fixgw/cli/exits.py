"""The CLI's exit statuses, and the text `--help` prints about them."""

from __future__ import annotations

EXIT_CONFIG = 2
"""A config error: a wrong key, or something it names that cannot be used at start (a file,
a directory, a group, a host, a port in use): one line per problem, naming the key."""
EXIT_USAGE = 2
"""A bad command line, as argparse exits for one; also a connection argument no gateway can
be at (`--tcp` not HOST:PORT, an empty or too long socket path)."""
EXIT_REJECTED = 3
"""`order new`: the followed order ended rejected by the exchange."""
EXIT_NOT_CANCELLED = 4
"""`halt`, `cancel-all`: some open orders could not be sent a cancel now."""
EXIT_NO_TUI = 2
"""`top`: not on a terminal, or rich (the `tui` extra) not installed: as a usage error."""
EXIT_JOURNAL_DAMAGED = 5
"""`run`: the journal has damaged records (see `fixgw journal check`); `journal check`: it
has."""
EXIT_CODES = f"""exit status:
  0  done
  1  the gateway refused the request, or could not be reached
  {EXIT_CONFIG}  a config error, or something the config names cannot be used (a file, a
     directory, a group, a host, a port in use): one line each, naming the key;
     top: not on a terminal, or rich (pip install 'fixgw[tui]') not installed;
     a bad command line (--tcp not HOST:PORT, an empty or too long --socket)
  {EXIT_REJECTED}  order new: the exchange rejected the order (seen while following it)
  {EXIT_NOT_CANCELLED}  halt: some open orders could not be sent a cancel now (the session is
     down, or the cancel rate limit): the gateway cancels them as soon as it can;
     cancel-all: some open orders were not cancelled (listed in `not_cancelled`)
  {EXIT_JOURNAL_DAMAGED}  run, journal check: the journal has damaged records; run refuses to
     start until `fixgw journal repair` has set them aside
"""
