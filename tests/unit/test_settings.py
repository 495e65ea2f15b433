from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.keys import FIRST_KEY_ID, KeyRing, SigningKey
from infra.settings import SECRET_FIELDS, SettingsError, env_for_children, load_settings

KEY = "k" * 40
LATER = "2027-01-01T00:00:00Z"


def previous_keys(*keys: tuple[str, str, str]) -> str:
    return json.dumps([{"id": key_id, "key": key, "retire_at": retire_at} for key_id, key, retire_at in keys])


def external(**extra: str) -> dict[str, str]:
    return {
        "TSUNAGARI_DATABASE_URL": "postgresql://db.internal/tsunagari",
        "TSUNAGARI_REDIS_URL": "redis://cache.internal:6379/0",
        "TSUNAGARI_JWT_SIGNING_KEY": KEY,
        "TSUNAGARI_CODE_SIGNING_KEY": KEY,
        "TSUNAGARI_TERMINAL_KEY": KEY,
        **extra,
    }


def test_values_come_from_prefixed_environment_variables() -> None:
    settings = load_settings(
        external(TSUNAGARI_PORT="9000", TSUNAGARI_WORKERS="4", TSUNAGARI_SEED_DEMO_DATA="false")
    )
    assert (settings.port, settings.workers, settings.seed_demo_data) == (9000, 4, False)
    assert not settings.is_embedded


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TSUNAGARI_PORT", "eighty"), ("TSUNAGARI_PORT", "70000"), ("TSUNAGARI_ACCESS_TOKEN_TTL_S", "0")],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(external(**{variable: value}))


def test_secrets_are_required_when_services_are_configured() -> None:
    env = external()
    del env["TSUNAGARI_TERMINAL_KEY"]
    with pytest.raises(SettingsError, match="TSUNAGARI_TERMINAL_KEY is required"):
        load_settings(env)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"TSUNAGARI_JWT_SIGNING_KEY.*must be at least 32"):
        load_settings(external(TSUNAGARI_JWT_SIGNING_KEY="short"))


def test_a_single_key_without_an_id_is_the_first_key_with_no_previous_one() -> None:
    ring = load_settings(external()).key_ring("terminal_key")
    assert ring == KeyRing(SigningKey(key_id=FIRST_KEY_ID, secret=KEY))


def test_previous_keys_come_as_json_with_their_retire_time() -> None:
    settings = load_settings(
        external(
            TSUNAGARI_CODE_SIGNING_KEY="n" * 40,
            TSUNAGARI_CODE_SIGNING_KEY_ID="2027-01",
            TSUNAGARI_CODE_SIGNING_PREVIOUS_KEYS=previous_keys(("k1", KEY, "2027-02-01T00:00:00+09:00")),
        )
    )
    ring = settings.key_ring("code_signing_key")
    assert ring.current == SigningKey(key_id="2027-01", secret="n" * 40)
    assert ring.previous == (
        SigningKey(key_id="k1", secret=KEY, retire_at=datetime(2027, 1, 31, 15, tzinfo=UTC)),
    )
    assert load_settings(env_for_children(settings)) == settings


def test_a_key_pasted_as_an_id_is_refused_without_being_shown() -> None:
    pasted = "a-real-terminal-key_0123456789abcdefghijklmnopqrstuvwxyz"
    with pytest.raises(SettingsError, match="current key's id") as refused:
        load_settings(external(TSUNAGARI_TERMINAL_KEY_ID=pasted))
    assert pasted not in str(refused.value)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"TSUNAGARI_TERMINAL_KEY_ID": "k 2"}, "is not 1-32 characters"),
        ({"TSUNAGARI_TERMINAL_KEY_ID": "k" * 33}, "is not 1-32 characters"),
        ({"TSUNAGARI_TERMINAL_PREVIOUS_KEYS": "[{"}, "not JSON"),
        ({"TSUNAGARI_TERMINAL_PREVIOUS_KEYS": previous_keys(("k0", "s" * 31, LATER))}, "at least 32"),
        ({"TSUNAGARI_TERMINAL_PREVIOUS_KEYS": previous_keys(("k1", "o" * 40, LATER))}, "ids must differ"),
        ({"TSUNAGARI_TERMINAL_PREVIOUS_KEYS": previous_keys(("k0", KEY, LATER))}, "the same key appears"),
        ({"TSUNAGARI_TERMINAL_PREVIOUS_KEYS": '[{"id": "k0", "key": "%s"}]' % ("o" * 40)}, "needs a retire"),
        (
            {"TSUNAGARI_TERMINAL_PREVIOUS_KEYS": previous_keys(("k0", "o" * 40, "2027-01-01T00:00:00"))},
            "timezone",
        ),
        (
            {
                "TSUNAGARI_TERMINAL_PREVIOUS_KEYS": previous_keys(
                    ("a", "a" * 40, LATER), ("b", "b" * 40, LATER), ("c", "c" * 40, LATER)
                )
            },
            "at most 2 previous keys",
        ),
    ],
)
def test_a_key_ring_that_cannot_be_right_is_refused_naming_its_variables(
    extra: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError, match=f"TSUNAGARI_TERMINAL_.*{problem}"):
        load_settings(external(**extra))


def test_embedded_mode_generates_secrets_once_and_keeps_them_private(tmp_path: Path) -> None:
    first = load_settings({"TSUNAGARI_DATA_DIR": str(tmp_path)})
    second = load_settings({"TSUNAGARI_DATA_DIR": str(tmp_path)})
    assert first.is_embedded
    for name in SECRET_FIELDS:
        assert getattr(first, name) == getattr(second, name)
        assert len(getattr(first, name)) >= 32
    stored = tmp_path / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert set(json.loads(stored.read_text())) == set(SECRET_FIELDS)


def test_children_see_the_same_settings() -> None:
    settings = load_settings(external(TSUNAGARI_WORKERS="3"))
    assert load_settings(env_for_children(settings)) == settings
