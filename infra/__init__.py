"""Edges to the outside world: settings, PostgreSQL, Redis, embedded servers, CLI, logging."""
