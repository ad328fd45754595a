"""The engine's decisions as plain functions of a ``Runtime``: testable without a broker."""
