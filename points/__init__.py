"""Points ledger: earning rules, lots, redemption, expiry, refunds; member codes for the register."""
