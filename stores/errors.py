"""Error codes of the stores capability, POS authentication included."""

from __future__ import annotations

from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated


class StoreNotFound(NotFound):
    code = "store_not_found"
    title = "No such store"


class InvalidOpeningHours(InvalidInput):
    code = "invalid_opening_hours"
    title = "Opening hours must be HH:MM intervals that close after they open, per weekday"


class StoreCodeTaken(Conflict):
    code = "store_code_taken"
    title = "Another store already has this code"


class TerminalNotFound(NotFound):
    code = "terminal_not_found"
    title = "No such POS terminal"


class StoreArchived(Conflict):
    code = "store_archived"
    title = "The store is archived; it takes no new terminals"


class PosSignatureMissing(Unauthenticated):
    code = "pos_signature_missing"
    title = "POS requests must carry Tsunagari-Key-Id, Tsunagari-Timestamp and Tsunagari-Signature headers"


class PosSignatureInvalid(Unauthenticated):
    code = "pos_signature_invalid"
    title = "The request signature does not match (wrong secret, or the request changed after signing)"


class PosTimestampOutOfWindow(Unauthenticated):
    code = "pos_timestamp_out_of_window"
    title = "The request timestamp is too far from the server clock; check the terminal's clock"


class PosNonceRequired(Unauthenticated):
    code = "pos_nonce_required"
    title = "POS requests must carry a Tsunagari-Nonce header, signed with the request"


class PosNonceInvalid(Unauthenticated):
    code = "pos_nonce_invalid"
    title = "Tsunagari-Nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -"


class PosRequestReplayed(Unauthenticated):
    code = "pos_request_replayed"
    title = "This signed request (or its nonce) was already received; sign each attempt anew"


class PosTerminalUnknown(Unauthenticated):
    code = "pos_terminal_unknown"
    title = "No terminal has this key id"


class PosTerminalDisabled(Forbidden):
    code = "pos_terminal_disabled"
    title = "This terminal (or its store) is disabled"


class InvalidPolygon(InvalidInput):
    code = "invalid_polygon"
    title = "The fence polygon is not usable"
