"""OKCoin's FIX 4.4 dialect: tags, translation tables, outbound and inbound translators.

Pure functions over `fixgw.fix.message.FixMessage` and `fixgw.domain`; no sockets, no QuickFIX.
"""
