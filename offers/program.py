"""The offers program's settings: how many offers the app shows, how rewards are counted, how the policy
chooses. `TSUNAGARI_OFFER_PROGRAM` (JSON of `OfferProgram`; omitted fields keep these defaults)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from offers.rules.policy import PolicyParams


class OfferProgram(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    slots: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5  # offers chosen per app list
    # A shown offer counts as a success for the policy if the member clips it within this window;
    # the worker learns from a decision once its window has closed.
    reward_window_hours: Annotated[int, msgspec.Meta(ge=1, le=30 * 24)] = 72
    # A purchase this soon after viewing an offer is reported against the decision that showed it.
    purchase_window_days: Annotated[int, msgspec.Meta(ge=1, le=60)] = 7
    # The app's list is kept this long (same store context, same policy version, offers still open): a
    # member refreshing the app sees a stable list, and refreshing writes no new decision.
    reuse_list_minutes: Annotated[int, msgspec.Meta(ge=0, le=24 * 60)] = 10
    # However the member's store context changes, at most one new list (one decision written) per member
    # this often: within it, the last list's offers still open are answered again.
    min_decision_seconds: Annotated[int, msgspec.Meta(ge=0, le=3_600)] = 60
    typical_basket_points: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 30  # prices a multiplier
    max_active_offers: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 500
    learn_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5_000  # decisions per policy version
    selection: PolicyParams = PolicyParams()

    def __post_init__(self) -> None:
        if self.max_active_offers > self.selection.max_candidates:
            raise ValueError(
                f"max_active_offers {self.max_active_offers} cannot each keep the selection's "
                f"min_probability {self.selection.min_probability}"
            )


def load_offer_program(text: str | None) -> OfferProgram:
    if not text:
        return OfferProgram()
    try:
        return msgspec.json.decode(text, type=OfferProgram)
    except msgspec.ValidationError as error:
        raise ValueError(f"TSUNAGARI_OFFER_PROGRAM: {error}") from error
