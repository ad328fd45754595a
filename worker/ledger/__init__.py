"""The ledger: the database is the only source of truth for orders, lots and slots."""
