"""Member and staff accounts: sign-up, login, rotating refresh tokens, profiles, erasure."""
