"""Member, staff and refresh-token tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from accounts.rules import StaffRole
from domain.ids import new_id
from domain.tokens import Audience
from infra.db import Base, pg_enum


class Member(Base):
    """A shopper. Personal columns are nulled on erasure; the row stays so the ledger keeps its owner."""

    __tablename__ = "members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    card_number: Mapped[str] = mapped_column(String(16), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(80))
    time_zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(35))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    erased_at: Mapped[datetime | None]

    __table_args__ = (
        Index("uq_members_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
        CheckConstraint("erased_at IS NOT NULL OR email IS NOT NULL", name="email_unless_erased"),
    )


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[StaffRole] = mapped_column(pg_enum(StaffRole, "staff_role"))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class RefreshToken(Base):
    """One link of a rotation chain. Reusing a rotated link revokes its whole family (RFC 9700 §4.14)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    audience: Mapped[Audience] = mapped_column(pg_enum(Audience, "token_audience"))
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    device_slot: Mapped[int | None]  # member logins: the device (accounts.devices) created with the login

    __table_args__ = (CheckConstraint("(member_id IS NULL) <> (staff_id IS NULL)", name="one_owner"),)


class MemberDevice(Base):
    """A phone a member is logged in on: it shows member codes offline (its code secret is derived from
    the server's code-signing key and `secret_salt`, never stored) and receives push messages at its
    FCM address (accounts.push_addresses)."""

    __tablename__ = "member_devices"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(primary_key=True)
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    push_kind: Mapped[str | None] = mapped_column(String(8))  # fid (Firebase installation id) or token
    push_address: Mapped[str | None] = mapped_column(String(1024))
    platform: Mapped[str | None] = mapped_column(String(16))
    app_version: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(35))
    notification_permission: Mapped[str | None] = mapped_column(String(16))
    push_refreshed_at: Mapped[datetime | None]
    push_disabled_at: Mapped[datetime | None]
    push_disabled_reason: Mapped[str | None] = mapped_column(String(40))
    last_seen_at: Mapped[datetime | None]

    __table_args__ = (
        # One address reaches one phone: a phone that changes hands (or members) moves its address.
        Index(
            "uq_member_devices_push_address",
            "push_address",
            unique=True,
            postgresql_where=text("push_address IS NOT NULL"),
        ),
    )


class ConsoleSession(Base):
    """A staff member signed in to the web console; the browser holds the token, we keep its digest."""

    __tablename__ = "console_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
