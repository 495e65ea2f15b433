"""The points capability's decisions, as pure functions of plain values and a time (no I/O).

`earning`: what a basket earns, line by line. `sales`: whether a sale can be recorded. `ledger`: which
lots a redemption or reversal takes, repayment of what is owed, the validity of returned points.
`refunds`: what a return reverses, line by line. `stages`: miles periods, stages and their bonuses.
"""
