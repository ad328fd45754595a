"""The exchange port and its adapters (OKX over REST, an in-memory venue for tests)."""
