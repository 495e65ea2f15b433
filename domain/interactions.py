"""The closed vocabulary of the customer-time timeline (顧客時間: choose → buy → use → share).

Every interaction a member has with the retailer is one of these kinds; its phase is data in
`PHASE_OF_KIND`, so code asks the table instead of branching on kinds. Adding a kind means adding it
here, to the table, and to the `interaction_kind` database enum (a migration).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class InteractionKind(StrEnum):
    MEMBER_JOINED = "member_joined"
    PROFILE_UPDATED = "profile_updated"
    APP_OPENED = "app_opened"
    CONTENT_VIEWED = "content_viewed"
    OFFER_VIEWED = "offer_viewed"
    OFFER_DECIDED = "offer_decided"
    OFFER_ACTIVATED = "offer_activated"
    OFFER_REDEEMED = "offer_redeemed"
    PUSH_SENT = "push_sent"
    PUSH_SUPPRESSED = "push_suppressed"  # held back: a control group, a cap, quiet hours, ...
    PUSH_RECEIVED = "push_received"
    PUSH_OPENED = "push_opened"
    CHECKED_IN = "checked_in"
    CHECK_IN_REJECTED = "check_in_rejected"
    PURCHASED = "purchased"
    POINTS_EARNED = "points_earned"
    POINTS_REDEEMED = "points_redeemed"
    POINTS_EXPIRED = "points_expired"
    POINTS_ADJUSTED = "points_adjusted"
    REFUNDED = "refunded"
    STAGE_REACHED = "stage_reached"
    SHARED = "shared"
    REVIEW_WRITTEN = "review_written"


class Phase(StrEnum):
    CHOOSE = "choose"
    BUY = "buy"
    USE = "use"
    SHARE = "share"


class Channel(StrEnum):
    APP = "app"
    POS = "pos"
    GEOFENCE = "geofence"
    PUSH = "push"
    CONSOLE = "console"
    SYSTEM = "system"


class SubjectType(StrEnum):
    OFFER = "offer"
    CAMPAIGN = "campaign"
    CONTENT = "content"
    TRANSACTION = "transaction"
    PRODUCT = "product"


_K = InteractionKind
PHASE_OF_KIND = MappingProxyType(
    {
        # choose: before a purchase, while the member considers what and where to buy
        _K.MEMBER_JOINED: Phase.CHOOSE,
        _K.APP_OPENED: Phase.CHOOSE,
        _K.CONTENT_VIEWED: Phase.CHOOSE,
        _K.OFFER_VIEWED: Phase.CHOOSE,
        _K.OFFER_DECIDED: Phase.CHOOSE,
        _K.OFFER_ACTIVATED: Phase.CHOOSE,
        _K.PUSH_SENT: Phase.CHOOSE,
        _K.PUSH_SUPPRESSED: Phase.CHOOSE,
        _K.PUSH_RECEIVED: Phase.CHOOSE,
        _K.PUSH_OPENED: Phase.CHOOSE,
        # buy: in the store and at the register
        _K.CHECKED_IN: Phase.BUY,
        _K.CHECK_IN_REJECTED: Phase.BUY,
        _K.PURCHASED: Phase.BUY,
        _K.POINTS_EARNED: Phase.BUY,
        _K.POINTS_REDEEMED: Phase.BUY,
        _K.OFFER_REDEEMED: Phase.BUY,
        # use: living with the purchase and the membership afterwards
        _K.REFUNDED: Phase.USE,
        _K.POINTS_EXPIRED: Phase.USE,
        _K.POINTS_ADJUSTED: Phase.USE,
        _K.STAGE_REACHED: Phase.USE,
        _K.PROFILE_UPDATED: Phase.USE,
        # share: telling others
        _K.SHARED: Phase.SHARE,
        _K.REVIEW_WRITTEN: Phase.SHARE,
    }
)

# What the app may report about itself. Everything else is recorded by the server where the fact
# happens (a client cannot claim a purchase, a check-in or points).
CLIENT_KINDS = frozenset(
    {
        _K.APP_OPENED,
        _K.CONTENT_VIEWED,
        _K.OFFER_VIEWED,
        _K.PUSH_RECEIVED,
        _K.PUSH_OPENED,
        _K.SHARED,
    }
)


# What the retailer does to a member rather than what the member does: recorded on their timeline, but
# neither "seen" nor an interaction in their traits (messaging a lapsed member does not make them active).
OUTREACH_KINDS = frozenset({_K.PUSH_SENT, _K.PUSH_SUPPRESSED, _K.OFFER_DECIDED})


def kinds_in_phase(phase: Phase) -> frozenset[InteractionKind]:
    return frozenset(kind for kind, kind_phase in PHASE_OF_KIND.items() if kind_phase is phase)


# Property names that traits read; services that record these kinds fill them.
AMOUNT_MINOR = "amount_minor"  # purchased, refunded: money paid or returned, minor units
CATEGORIES = "categories"  # purchased: product categories in the basket
