"""Error codes of the push capability."""

from __future__ import annotations

from domain.errors import Conflict, InvalidInput, NotFound


class UnknownMessageField(InvalidInput):
    code = "unknown_message_field"
    title = "The message uses a field that does not exist"


class MessageTooLarge(InvalidInput):
    code = "message_too_large"
    title = "The message could exceed FCM's 4,096-byte limit for some member"


class InvalidSchedule(InvalidInput):
    code = "invalid_schedule"
    title = "The schedule cannot be carried out"


class InvalidVariants(InvalidInput):
    code = "invalid_variants"
    title = "Variant keys must be distinct and not name a control group"


class UnknownStore(InvalidInput):
    code = "unknown_store"
    title = "The segment names a store that does not exist"


class CampaignNotFound(NotFound):
    code = "campaign_not_found"
    title = "No such campaign"


class CampaignNotEditable(Conflict):
    code = "campaign_not_editable"
    title = "Only a draft campaign can be changed; cancel it and make a new one"


class CampaignStateConflict(Conflict):
    code = "campaign_state_conflict"
    title = "The campaign is not in a state that allows this"


class InvalidSampleSize(InvalidInput):
    code = "invalid_sample_size"
    title = "A segment sample has 1 to 20 members"
