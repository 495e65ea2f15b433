"""Stores and their POS terminals, including how a terminal proves who it is."""
