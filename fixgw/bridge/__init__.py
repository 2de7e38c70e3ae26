"""The FIX bridge: a standard FIX 4.4 acceptor for existing OMS software."""
