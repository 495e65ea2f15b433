"""The offers capability's decisions, as pure functions (no I/O).

`terms`: offer kinds, their terms, states and validity. `eligibility`: whether a member may be offered,
clip or use an offer. `effects`: what a used offer earns at the register. `features` and `policy`: the
contextual bandit that chooses offers with exact propensities. `estimators`: off-policy evaluation.
"""
