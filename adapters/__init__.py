"""Adapters to the outside world: storage, keys, secrets, the clock."""
