from __future__ import annotations

import pytest

from fraudops.secrets import ensure_secrets, load_secrets


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
