"""What is FIX but no venue's: the raw message, QuickFIX glue, the initiator session."""
