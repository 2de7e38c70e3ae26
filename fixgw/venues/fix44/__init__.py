"""Plain FIX 4.4 order entry: any broker or venue that speaks the standard, and what a
dialect of it (OKCoin's) builds on."""
