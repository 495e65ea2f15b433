"""Request and response bodies of the account endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from accounts.devices import DeviceCredentials
from accounts.rules import MAX_PASSWORD_LENGTH, StaffRole

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, examples=["hanako@example.jp"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
TimeZoneName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Asia/Tokyo"])]
Locale = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35, examples=["ja-JP"])
]
OpaqueToken = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class SignUp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    password: Password
    display_name: DisplayName
    time_zone: TimeZoneName = "Asia/Tokyo"
    locale: Locale = "ja-JP"


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    password: Password


class RefreshRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: OpaqueToken


class PasswordConfirmation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    password: Password


class ProfileChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fields left out (or null) stay as they are."""

    display_name: DisplayName | None = None
    time_zone: TimeZoneName | None = None
    locale: Locale | None = None


class TokenPair(msgspec.Struct, frozen=True):
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


class MemberTokenPair(TokenPair, frozen=True):
    """A member's refreshed tokens, with the device's code secret under the current code key (None when
    the login's device was revoked): how the app learns of a code key rotation."""

    device: DeviceCredentials | None = None


class MemberProfile(msgspec.Struct, frozen=True):
    id: uuid.UUID
    card_number: str
    email: str
    display_name: str
    time_zone: str
    locale: str
    created_at: datetime


class MemberSession(msgspec.Struct, frozen=True):
    member: MemberProfile
    tokens: TokenPair
    device: DeviceCredentials  # keep `code_secret` in the device's secure storage (see accounts.devices)


class StaffProfile(msgspec.Struct, frozen=True):
    id: uuid.UUID
    email: str
    display_name: str
    role: StaffRole


class StaffSession(msgspec.Struct, frozen=True):
    staff: StaffProfile
    tokens: TokenPair
