"""Alembic migrations; `tsunagari migrate` applies them."""
