"""Settings read from `TSUNAGARI_*` environment variables, validated once at start."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from domain.keys import FIRST_KEY_ID, KeyRing, SigningKey, key_ring_problems

ENV_PREFIX = "TSUNAGARI_"
SECRETS_FILE = "secrets.json"
SECRET_FIELDS = ("jwt_signing_key", "code_signing_key", "terminal_key")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveSeconds = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service needs to know about its surroundings.

    `database_url` / `redis_url` left unset means embedded mode: `serve` starts its own
    PostgreSQL and Redis under `data_dir` and keeps generated secrets there.
    """

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: str = ".tsunagari"
    host: str = "127.0.0.1"
    port: Port = 8000
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    log_level: str = "INFO"
    # Each signing key has an id and may have previous keys still accepted until their retire time
    # (domain.keys; docs/operations.md, "Rotating keys"). Previous keys are a JSON list of
    # {"id", "key", "retire_at"}.
    jwt_signing_key: str | None = None
    jwt_signing_key_id: str = FIRST_KEY_ID
    jwt_signing_previous_keys: tuple[SigningKey, ...] = ()
    code_signing_key: str | None = None
    code_signing_key_id: str = FIRST_KEY_ID
    code_signing_previous_keys: tuple[SigningKey, ...] = ()
    terminal_key: str | None = None
    terminal_key_id: str = FIRST_KEY_ID
    terminal_previous_keys: tuple[SigningKey, ...] = ()
    access_token_ttl_s: PositiveSeconds = 900
    refresh_token_ttl_s: PositiveSeconds = 30 * 24 * 3600
    pos_clock_skew_s: PositiveSeconds = 300
    # Refuse POS requests signed without a Tsunagari-Nonce (the previous release's form) once every
    # register sends one; the next release makes this the only form.
    pos_require_nonce: bool = False
    # Serve the OpenAPI document and its viewers at /schema.
    openapi_enabled: bool = True
    max_request_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    login_attempts_per_window: Annotated[int, msgspec.Meta(ge=1)] = 10
    login_window_s: PositiveSeconds = 900
    # Per client address (an IPv6 /64), across accounts: credential stuffing and sign-up bursts from one
    # place. Behind a proxy, uvicorn's FORWARDED_ALLOW_IPS names the proxies whose X-Forwarded-For is the
    # client's address (docs/operations.md).
    login_attempts_per_address_per_window: Annotated[int, msgspec.Meta(ge=1)] = 100
    sign_ups_per_address_per_window: Annotated[int, msgspec.Meta(ge=1)] = 20
    sign_up_window_s: PositiveSeconds = 3600
    database_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    # Connections per worker process for requests that only read (api.transactions.ONLY_READS): autocommit,
    # read-only.
    database_read_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 5
    redis_key_prefix: str = "tsunagari:"
    seed_demo_data: bool = True
    timeline_retention_days: Annotated[int, msgspec.Meta(ge=90)] = 730
    idempotency_ttl_s: PositiveSeconds = 7 * 24 * 3600
    points_program: str | None = None  # JSON of points.program.Program; unset: the defaults
    check_in_policy: str | None = None  # JSON of geofence.rules.CheckInPolicy; unset: the defaults
    push_policy: str | None = None  # JSON of push.policy.PushPolicy; unset: the defaults
    offer_program: str | None = None  # JSON of offers.program.OfferProgram; unset: the defaults
    # FCM: production sets the service account's JSON key file; its project id is the key's unless set.
    # Without credentials, messages go to `fcm_url`, an FCM-compatible server (`tsunagari fcm-local`);
    # embedded `serve` starts one itself.
    fcm_credentials: str | None = None
    fcm_project_id: str | None = None
    fcm_url: str | None = None
    fcm_timeout_s: Annotated[int, msgspec.Meta(ge=1, le=120)] = 10

    @property
    def is_embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def key_ring(self, name: str) -> KeyRing:
        """The keys of one of SECRET_FIELDS; `load_settings` guarantees the current one is present."""
        secret: str | None = getattr(self, name)
        if secret is None:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} is not set")
        current = SigningKey(key_id=getattr(self, f"{name}_id"), secret=secret)
        return KeyRing(current, getattr(self, _previous_keys_field(name)))


def _previous_keys_field(secret_field: str) -> str:
    return secret_field.removesuffix("_key") + "_previous_keys"


_PREVIOUS_KEYS_FIELDS = frozenset(_previous_keys_field(name) for name in SECRET_FIELDS)


def _env_field_names() -> dict[str, str]:
    return {f"{ENV_PREFIX}{name.upper()}": name for name in Settings.__struct_fields__}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from the environment (then `overrides`), fill secrets, validate.

    Raises SettingsError naming the offending variable, so an operator sees at once what to fix.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {
        field: _env_value(var, field, env[var])
        for var, field in _env_field_names().items()
        if var in env and env[var] != ""
    }
    raw.update({key: value for key, value in overrides.items() if value is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        raise SettingsError(_name_the_variable(str(error))) from error
    return _with_secrets(settings)


def _env_value(var: str, field: str, value: str) -> object:
    if field not in _PREVIOUS_KEYS_FIELDS:
        return value
    try:
        return msgspec.json.decode(value)
    except msgspec.DecodeError as error:
        raise SettingsError(f"{var}: not JSON ({error})") from error


def _name_the_variable(message: str) -> str:
    match = re.search(r"at `\$\.(\w+)", message)
    if match is None:
        return message
    return f"{ENV_PREFIX}{match.group(1).upper()}: {message.split(' - at')[0]}"


def _with_secrets(settings: Settings) -> Settings:
    missing = [name for name in SECRET_FIELDS if getattr(settings, name) is None]
    if missing and settings.is_embedded:
        stored = _stored_secrets(settings.data_path)
        settings = msgspec.structs.replace(settings, **{name: stored[name] for name in missing})
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is None:
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()} is required when TSUNAGARI_DATABASE_URL and "
                "TSUNAGARI_REDIS_URL are given (embedded mode generates it under the data directory)"
            )
        problems = key_ring_problems(settings.key_ring(name))
        if problems:
            variables = (name, f"{name}_id", _previous_keys_field(name))
            named = ", ".join(f"{ENV_PREFIX}{variable.upper()}" for variable in variables)
            raise SettingsError(f"{named}: {'; '.join(problems)}")
    return settings


def _stored_secrets(data_path: Path) -> dict[str, str]:
    """Secrets generated once per embedded installation and kept readable by its owner only."""
    data_path.mkdir(parents=True, exist_ok=True)
    path = data_path / SECRETS_FILE
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if all(name in stored for name in SECRET_FIELDS):
        return stored
    for name in SECRET_FIELDS:
        stored.setdefault(name, secrets.token_urlsafe(48))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(stored, handle)
    return stored


def env_for_children(settings: Settings) -> dict[str, str]:
    """The environment that makes worker processes see exactly these settings."""
    env: dict[str, str] = {}
    for var, field in _env_field_names().items():
        value = getattr(settings, field)
        if isinstance(value, tuple):
            env[var] = msgspec.json.encode(value).decode()
        elif value is not None:
            env[var] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
