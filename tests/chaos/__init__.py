"""The chaos soak: the whole engine under seeded random faults, checked against the
simulator's own books (``harness.run_soak``; README, "Chaos soak")."""
