"""The `tsunagari` command: serve, migrate, the worker and its jobs, the demo seeder, operator tasks.

An entry point, like the HTTP app in api/: it may use every capability, and nothing imports it.
"""
