from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from infra.settings import SECRET_FIELDS, SettingsError, env_for_children, load_settings

KEY = "k" * 40


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
    with pytest.raises(SettingsError, match="TSUNAGARI_JWT_SIGNING_KEY must be at least"):
        load_settings(external(TSUNAGARI_JWT_SIGNING_KEY="short"))


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
