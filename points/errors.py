"""Error codes of the points capability."""

from __future__ import annotations

from domain.errors import Conflict, InvalidInput, NotFound


class InsufficientPoints(InvalidInput):
    code = "insufficient_points"
    title = "The member's available points do not cover the redemption"


class InvalidMemberCode(InvalidInput):
    code = "invalid_member_code"
    title = "The scanned member code is not valid (expired, mistyped, or from a revoked device)"


class StaticCardNotAllowed(InvalidInput):
    code = "static_card_not_allowed"
    title = "This program accepts only the rotating member code from the app"


class MemberCodeUsedElsewhere(Conflict):
    code = "member_code_used_elsewhere"
    title = "This member code was just used at another store; ask the member to show a fresh code"


class ReceiptAlreadyPosted(Conflict):
    code = "receipt_already_posted"
    title = "This receipt was already posted for this store (with another Idempotency-Key)"


class RefundAlreadyPosted(Conflict):
    code = "refund_already_posted"
    title = "This refund receipt was already posted for this store"


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"
    title = "No purchase with this receipt id at this store"


class TotalMismatch(InvalidInput):
    code = "total_mismatch"
    title = "total_minor is not the sum of the lines (quantity x unit price - discount)"


class CurrencyNotSupported(InvalidInput):
    code = "currency_not_supported"
    title = "The program runs in another currency"


class SaleTimeOutOfRange(InvalidInput):
    code = "sale_time_out_of_range"
    title = "sold_at is in the future or older than late postings are accepted"


class RedemptionNeedsMember(InvalidInput):
    code = "redemption_needs_member"
    title = "Points can only be redeemed with a member code"


class RedemptionExceedsTotal(InvalidInput):
    code = "redemption_exceeds_total"
    title = "The points redeemed would pay more than the sale total"


class RefundExceedsSale(InvalidInput):
    code = "refund_exceeds_sale"
    title = "The refund is larger than what remains of the sale"


class UnknownLine(InvalidInput):
    code = "unknown_line"
    title = "A refund line refers to a line number the sale does not have"


class MemberCodeAlreadyRedeemed(Conflict):
    code = "member_code_already_redeemed"
    title = "This member code already paid for a sale with points; ask the member to show a fresh code"


class DuplicateLine(InvalidInput):
    code = "duplicate_line"
    title = "A line number appears more than once"


class RefundLinesOrAmount(InvalidInput):
    code = "refund_lines_or_amount"
    title = "A refund gives either lines or amount_minor, exactly one of them"


class RefundTimeOutOfRange(InvalidInput):
    code = "refund_time_out_of_range"
    title = "refunded_at is in the future, before the sale, or older than late postings are accepted"
