"""Read models built from the event notification log."""
