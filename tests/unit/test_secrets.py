from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.secrets import (
    COMPONENT_SECRETS,
    component_file,
    ensure_secrets,
    load_secrets,
    write_component_secrets,
)

REPO = Path(__file__).resolve().parents[2]


def test_generates_fresh_secrets_and_keeps_them(tmp_path) -> None:
    (tmp_path / "svc.env.example").write_text(
        "# comment\nUSER=admin\nPASSWORD=<generate:token>\nKEY=<generate:fernet>\n"
    )
    assert ensure_secrets(tmp_path) == {"svc.env": ["USER", "PASSWORD", "KEY"]}
    first = load_secrets(tmp_path)
    assert first["USER"] == "admin"
    assert len(first["PASSWORD"]) >= 32 and "<generate" not in first["PASSWORD"]
    assert len(first["KEY"]) == 44  # a Fernet key: 32 url-safe base64 bytes
    assert (tmp_path / "svc.env").stat().st_mode & 0o077 == 0

    # a second start generates nothing and changes nothing
    assert ensure_secrets(tmp_path) == {}
    assert load_secrets(tmp_path) == first


def test_a_key_added_to_the_example_is_added_without_touching_others(tmp_path) -> None:
    example = tmp_path / "svc.env.example"
    example.write_text("PASSWORD=<generate:token>\n")
    ensure_secrets(tmp_path)
    before = load_secrets(tmp_path)["PASSWORD"]
    example.write_text("PASSWORD=<generate:token>\nOTHER=<generate:token>\n")
    assert ensure_secrets(tmp_path) == {"svc.env": ["OTHER"]}
    after = load_secrets(tmp_path)
    assert after["PASSWORD"] == before and after["OTHER"] != before


def test_two_generations_differ(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "svc.env.example").write_text("PASSWORD=<generate:token>\n")
        ensure_secrets(folder)
    assert load_secrets(a)["PASSWORD"] != load_secrets(b)["PASSWORD"]


def test_missing_secrets_fail_with_a_clear_message(tmp_path) -> None:
    (tmp_path / "svc.env.example").write_text("PASSWORD=<generate:token>\n")
    with pytest.raises(FileNotFoundError, match="make secrets"):
        load_secrets(tmp_path)


def test_committed_examples_hold_no_literal_password() -> None:
    from fraudops.config.settings import load_settings

    for example in load_settings().env_dir.glob("*.env.example"):
        for line in example.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                if any(word in key for word in ("PASSWORD", "SECRET", "KEY")):
                    assert value.startswith("<generate:"), f"{example.name}: {key} must be generated"


def _generated(tmp_path: Path) -> Path:
    env = tmp_path / "env"
    env.mkdir()
    for example in (REPO / "env").glob("*.env.example"):
        (env / example.name).write_text(example.read_text())
    ensure_secrets(env)
    return env


def test_each_component_file_holds_exactly_its_keys_readable_by_the_owner_only(tmp_path) -> None:
    env = _generated(tmp_path)
    written = write_component_secrets(env)
    assert {p.stem for p in written} == set(COMPONENT_SECRETS)
    everything = load_secrets(env)
    for component, keys in COMPONENT_SECRETS.items():
        path = component_file(env, component)
        assert path.stat().st_mode & 0o777 == 0o600, component
        container = tmp_path / "containers" / component
        container.mkdir(parents=True)
        (container / f"{component}.env").write_text(path.read_text())
        # in a container (its own file alone, no example beside it) load_secrets reads that file only
        assert dict(load_secrets(container)) == {k: everything[k] for k in keys}, component
    assert (env / "components").stat().st_mode & 0o777 == 0o700


def test_component_files_follow_a_changed_secret(tmp_path) -> None:
    env = _generated(tmp_path)
    write_component_secrets(env)
    text = (env / "redis.env").read_text()
    old = load_secrets(env)["REDIS_PASSWORD"]
    (env / "redis.env").write_text(text.replace(old, "changed"))
    write_component_secrets(env)
    assert "REDIS_PASSWORD=changed\n" in component_file(env, "redis").read_text()
