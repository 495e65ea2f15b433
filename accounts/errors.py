"""Error codes of the accounts capability."""

from __future__ import annotations

from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthenticated


class InvalidEmail(InvalidInput):
    code = "invalid_email"
    title = "Not an email address"


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "The password does not meet the password policy"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this email already exists"


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    title = "Email or password is wrong"


class TooManyLoginAttempts(TooManyRequests):
    code = "too_many_login_attempts"
    title = "Too many login attempts for this account; retry later"


class TooManyLoginAttemptsFromAddress(TooManyRequests):
    code = "too_many_login_attempts_from_address"
    title = "Too many login attempts from this network address; retry later"


class TooManySignUps(TooManyRequests):
    code = "too_many_sign_ups"
    title = "Too many sign-ups from this network address; retry later"


class RefreshTokenInvalid(Unauthenticated):
    code = "refresh_token_invalid"
    title = "The refresh token is not known"


class RefreshTokenExpired(Unauthenticated):
    code = "refresh_token_expired"
    title = "The refresh token has expired; log in again"


class RefreshTokenRevoked(Unauthenticated):
    code = "refresh_token_revoked"
    title = "The refresh token was revoked; log in again"


class RefreshTokenReused(Unauthenticated):
    code = "refresh_token_reused"
    title = "The refresh token was already used; all sessions of this login were revoked"


class AccessTokenInvalid(Unauthenticated):
    code = "access_token_invalid"
    title = "The access token is missing, malformed or not for this API"


class AccessTokenExpired(Unauthenticated):
    code = "access_token_expired"
    title = "The access token has expired; refresh it"


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "No such member"


class StaffRoleRequired(Forbidden):
    code = "staff_role_required"
    title = "This action needs another staff role"


class StaffDisabled(Unauthenticated):
    code = "staff_disabled"
    title = "This staff account is disabled"


class StaffNotFound(NotFound):
    code = "staff_not_found"
    title = "No such staff account"


class LastAdmin(Conflict):
    code = "last_admin"
    title = "The last enabled admin cannot be disabled or demoted"


class StaffExists(Conflict):
    code = "staff_exists"
    title = "A staff account with this email already exists"


class DeviceNotFound(NotFound):
    code = "device_not_found"
    title = "No active device in this slot"


class PushAddressNeedsDevice(InvalidInput):
    code = "push_address_needs_device"
    title = "Push addresses belong to a logged-in device; log in again to get a device token"


class ConsoleSessionInvalid(Unauthenticated):
    code = "console_session_invalid"
    title = "Sign in to the console"


class InvalidMemberSearch(InvalidInput):
    code = "invalid_member_search"
    title = "Search with at most 254 characters and ask for 1 to 50 members"
