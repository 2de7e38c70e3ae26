"""How long a secret must be to be masked wherever its value stands."""

MASKED_BY_VALUE_FROM = 8
"""A secret this long or longer is masked wherever its value stands (in a venue's message,
in a log line); a shorter one would hide innocent text where it happens to occur (a price,
an id), and is masked only by the tag or key that names it."""
