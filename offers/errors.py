"""Error codes of the offers capability."""

from __future__ import annotations

from domain.errors import Conflict, InvalidInput, NotFound


class OfferNotFound(NotFound):
    code = "offer_not_found"
    title = "No such offer"


class OfferStateConflict(Conflict):
    code = "offer_state_conflict"
    title = "The offer is not in a state that allows this"


class OfferNotEditable(Conflict):
    code = "offer_not_editable"
    title = "Only a draft offer changes its terms and dates; an active offer is paused first"


class TooManyActiveOffers(Conflict):
    code = "too_many_active_offers"
    title = "The catalogue already has as many active offers as the policy can choose among"


class InvalidOffer(InvalidInput):
    code = "invalid_offer"
    title = "The offer's values do not fit together"


class UnknownStore(InvalidInput):
    code = "unknown_store"
    title = "The offer names a store that does not exist"


class OfferNotAvailable(Conflict):
    code = "offer_not_available"
    title = "This offer is not available to you now"


class OfferNotApplicable(InvalidInput):
    code = "offer_not_applicable"
    title = "The sale names an offer the member cannot use on it"


class InvalidMemberCount(InvalidInput):
    code = "invalid_member_count"
    title = "Choice probabilities are averaged over 1 to 1,000 members"
