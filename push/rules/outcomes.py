"""What an answer from FCM means for a delivery, and when to try again.

FCM error codes (HTTP v1 API): UNREGISTERED and SENDER_ID_MISMATCH mean the address is dead;
INVALID_ARGUMENT means a bad address only when the message itself is known to be valid (the same
campaign message was accepted for another address); QUOTA_EXCEEDED (429) and UNAVAILABLE (503) or
INTERNAL (500) are worth retrying, after FCM's Retry-After if it gave one, else an exponential backoff
with jitter. A delivery is given up on (failed, with its reason) once retrying has lasted too long.

No answer at all after the request left (a timeout, a dropped connection: OUTCOME_UNKNOWN), or an
answer that does not say whether FCM took the message (DEADLINE_EXCEEDED, UNKNOWN), is `unconfirmed`:
it may have been delivered, so it is never sent again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

BASE_BACKOFF_S = 2.0
MAX_BACKOFF_S = 900.0  # 15 minutes

DEAD_ADDRESS_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
RETRYABLE_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})
AMBIGUOUS_CODES = frozenset({"OUTCOME_UNKNOWN", "DEADLINE_EXCEEDED", "UNKNOWN"})


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    DEAD_ADDRESS = "dead_address"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"


def classify(error_code: str | None, message_known_valid: bool) -> Outcome:
    """What to do with a delivery FCM answered with `error_code` (None: accepted)."""
    if error_code is None:
        return Outcome.SENT
    if error_code in DEAD_ADDRESS_CODES:
        return Outcome.DEAD_ADDRESS
    if error_code == "INVALID_ARGUMENT":
        return Outcome.DEAD_ADDRESS if message_known_valid else Outcome.FAILED
    if error_code in RETRYABLE_CODES:
        return Outcome.RETRY
    if error_code in AMBIGUOUS_CODES:
        return Outcome.UNCONFIRMED
    return Outcome.FAILED  # credentials, permissions, a third party's auth: retrying will not help


def retry_delay_s(attempt: int, retry_after_s: float | None, jitter: float) -> float:
    """Seconds before attempt `attempt + 1`: FCM's Retry-After when given, else 2^attempt seconds
    (capped at 15 minutes), spread over its upper half by `jitter` in [0, 1) so workers do not return
    all at once."""
    if not 0 <= jitter < 1:
        raise ValueError("jitter is a fraction in [0, 1)")
    backoff = min(MAX_BACKOFF_S, BASE_BACKOFF_S * float(2 ** max(0, attempt - 1)))
    spread = backoff / 2 + backoff / 2 * jitter
    return max(retry_after_s or 0.0, spread)


def gives_up(first_due_at: datetime, retry_at: datetime, give_up_after: timedelta) -> bool:
    return retry_at - first_due_at > give_up_after
