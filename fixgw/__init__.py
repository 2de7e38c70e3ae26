"""fixgw: a FIX 4.4 gateway for OKCoin's FIX dialect."""

__version__ = "0.1.0"
