"""The pure model of keyledger: aggregates, events, value objects and policies."""
