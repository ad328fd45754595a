"""Pure domain logic: no Celery, no SQLAlchemy sessions, no HTTP."""
