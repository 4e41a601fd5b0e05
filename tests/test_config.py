"""Settings layering: defaults < config file < TORRIP_* variables < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrip.config import DEFAULT_INDEX_URL, load_settings
from torrip.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={"TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")})
    assert settings.index_url == DEFAULT_INDEX_URL
    assert settings.index_urls == (DEFAULT_INDEX_URL,)
    assert settings.extra_index_url == ()


def test_layers_in_order(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'index-url = "https://file.example/simple"\n'
        'extra-index-url = ["https://a.example/simple"]\n'
        "timeout = 5\n"
        "pre = true\n"
    )
    environ = {
        "TORRIP_CONFIG_FILE": str(config),
        "TORRIP_EXTRA_INDEX_URL": "https://b.example/simple, https://c.example/simple",
        "TORRIP_TIMEOUT": "7.5",
    }
    settings = load_settings({"timeout": 9.0}, environ=environ)
    assert settings.index_url == "https://file.example/simple"
    assert settings.extra_index_url == ("https://b.example/simple", "https://c.example/simple")
    assert settings.timeout == 9.0
    assert settings.pre is True


def test_torrip_table_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[torrip]\nfind-links = ["/srv/wheels"]\n')
    settings = load_settings(environ={"TORRIP_CONFIG_FILE": str(config)})
    assert settings.find_links == ("/srv/wheels",)


def test_isolated_ignores_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('index-url = "https://file.example/simple"\n')
    environ = {"TORRIP_CONFIG_FILE": str(config), "TORRIP_PRE": "1"}
    settings = load_settings(environ=environ, isolated=True)
    assert settings.index_url == DEFAULT_INDEX_URL
    assert settings.pre is False


def test_cache_dir_from_variables(tmp_path: Path) -> None:
    none = str(tmp_path / "none.toml")
    assert (
        load_settings(
            environ={"TORRIP_CONFIG_FILE": none, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
        ).cache_dir
        == tmp_path / "xdg" / "torrip"
    )
    assert (
        load_settings(
            environ={
                "TORRIP_CONFIG_FILE": none,
                "TORRIP_CACHE_DIR": str(tmp_path / "own"),
                "XDG_CACHE_HOME": str(tmp_path / "xdg"),
            }
        ).cache_dir
        == tmp_path / "own"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("index-url = 3\n", "bad value 3 for index-url"),
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("timeout = \n", "cannot read config file"),
        ("retries = 'many'\n", "bad value 'many' for retries"),
    ],
)
def test_bad_config_file(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TORRIP_CONFIG_FILE": str(config)})
    assert message in str(caught.value)
    assert str(config) in str(caught.value)


def test_a_config_file_that_is_not_utf8_is_named_with_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b"index-url = '\xff'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TORRIP_CONFIG_FILE": str(config)})
    assert f"cannot read config file {config}" in str(caught.value)
    assert "UTF-8" in (caught.value.hint or "")


def test_bad_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TORRIP_CONFIG_FILE": str(tmp_path / "x"), "TORRIP_PRE": "maybe"})
    assert "TORRIP_PRE" in str(caught.value)


def test_peer_to_peer_settings_follow_the_naming_rule(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'dht-bootstrap = ["10.0.0.1:6881"]\n'
        'listen = ["127.0.0.1:0"]\n'
        "lan-discovery = true\n"
        'upload-rate = "2M"\n'
    )
    environ = {
        "TORRIP_CONFIG_FILE": str(config),
        "TORRIP_TRACKERS": "http://127.0.0.1:1/announce, http://127.0.0.1:2/announce",
        "TORRIP_DOWNLOAD_RATE": "512KiB",
        "TORRIP_P2P": "off",
    }
    settings = load_settings({"listen": ("127.0.0.1:7000",)}, environ=environ)
    assert settings.dht_bootstrap == ("10.0.0.1:6881",)
    assert settings.trackers == ("http://127.0.0.1:1/announce", "http://127.0.0.1:2/announce")
    assert settings.listen == ("127.0.0.1:7000",)  # the flag wins
    assert settings.lan_discovery is True
    assert settings.upload_rate == 2_000_000
    assert settings.download_rate == 512 * 1024
    assert settings.p2p is False


def test_p2p_defaults_are_quiet_on_the_lan(tmp_path: Path) -> None:
    settings = load_settings(environ={"TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")})
    assert settings.p2p is True
    assert settings.lan_discovery is False
    assert settings.upload_rate == settings.download_rate == 0


def test_bad_rate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="upload-rate"):
        load_settings(
            environ={
                "TORRIP_CONFIG_FILE": str(tmp_path / "none.toml"),
                "TORRIP_UPLOAD_RATE": "fast",
            }
        )


def test_upload_cutoff() -> None:
    from datetime import datetime, timedelta, timezone

    from torrip.config import upload_cutoff

    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert upload_cutoff("") is None
    assert upload_cutoff("P3D", now) == now - timedelta(days=3)
    assert upload_cutoff("p0d", now) == now
    assert upload_cutoff("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=timezone.utc)
    local = upload_cutoff("2025-01-01T00:00:00")  # no zone: local time, as pip reads it
    assert local is not None and local.tzinfo is not None
    assert local == datetime(2025, 1, 1).astimezone()
    with pytest.raises(ConfigError, match="uploaded-prior-to"):
        upload_cutoff("P3W")


def test_the_readme_config_example_loads(tmp_path: Path) -> None:
    """The config file shown in the README is one torrip reads, key by key."""
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    match = re.search(r"```toml\n(# ~/.config/torrip/config.toml\n.*?)```", readme, re.S)
    assert match is not None
    config = tmp_path / "config.toml"
    config.write_text(match[1])
    settings = load_settings(environ={"TORRIP_CONFIG_FILE": str(config)})
    assert (settings.uploaded_prior_to, settings.upload_rate, settings.link_mode) == (
        "P3D",
        5_000_000,
        "hardlink",
    )
