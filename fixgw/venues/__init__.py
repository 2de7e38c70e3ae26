"""Venues: each speaks its FIX dialect behind the `Venue` interface (`venues.base`)."""
