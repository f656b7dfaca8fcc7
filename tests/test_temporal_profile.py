"""The Temporal connection comes from a profile of Temporal's client config file when one is
named, so the same worker runs against a self-hosted cluster (mutual TLS) or Temporal Cloud
(API key); without one, ``TANDEM_TEMPORAL_ADDRESS`` alone, as before. A named profile that is
missing, or a file that is not there, is one clear line, and shows nothing of the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from starter.common import CommandError, connect_temporal, temporal_connect_config
from tandem.settings import PROJECT_ROOT, Settings
from tests.support import tandem_cli

EXAMPLE = PROJECT_ROOT / "deploy" / "temporal.toml.example"


def settings_with(**values: object) -> Settings:
    return Settings.model_validate(values)


def test_without_a_profile_the_address_setting_alone_is_used() -> None:
    config = temporal_connect_config(settings_with(temporal_address="10.1.2.3:7233"))
    assert config == {"target_host": "10.1.2.3:7233", "namespace": "default"}


def test_the_example_profiles_give_mutual_tls_and_an_api_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in [v for v in os.environ if v.startswith("TEMPORAL_")]:
        monkeypatch.delenv(var)
    certs = tmp_path / "certs"
    certs.mkdir()
    text = EXAMPLE.read_text(encoding="utf-8").replace("/etc/tandem/", f"{certs}/")
    for name in ("temporal-ca.pem", "tandem-client.pem", "tandem-client.key"):
        (certs / name).write_text(f"-----{name}-----\n", encoding="utf-8")
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(text, encoding="utf-8")

    kreis = temporal_connect_config(
        settings_with(temporal_profile="kreis", temporal_config_file=config_file)
    )
    assert kreis["target_host"] == "temporal.kreis.example:7233"
    assert kreis["namespace"] == "mentoring"
    tls = kreis["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"-----tandem-client.pem-----\n"
    assert tls.client_private_key == b"-----tandem-client.key-----\n"
    assert tls.server_root_ca_cert == b"-----temporal-ca.pem-----\n"

    cloud = temporal_connect_config(
        settings_with(temporal_profile="cloud", temporal_config_file=config_file)
    )
    assert cloud["api_key"] == "change-me-temporal-cloud-api-key"
    assert cloud["namespace"] == "mentoring.a1b2c"

    # An address set for this installation still wins over the file.
    moved = temporal_connect_config(
        settings_with(
            temporal_profile="cloud",
            temporal_config_file=config_file,
            temporal_address="127.0.0.1:7233",
        )
    )
    assert moved["target_host"] == "127.0.0.1:7233" and moved["api_key"]


def test_a_missing_profile_or_file_is_one_line_without_the_files_content(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        '[profile.kreis]\naddress = "x:1"\napi_key = "very-secret-key"\n', encoding="utf-8"
    )
    with pytest.raises(CommandError) as missing:
        temporal_connect_config(
            settings_with(temporal_profile="cloud", temporal_config_file=config_file)
        )
    assert str(missing.value) == "Temporal profile cloud: not found"
    broken = tmp_path / "broken.toml"
    broken.write_text('[profile.kreis\napi_key = "very-secret-key"\n', encoding="utf-8")
    with pytest.raises(CommandError) as unreadable:
        temporal_connect_config(
            settings_with(temporal_profile="kreis", temporal_config_file=broken)
        )
    assert "very-secret-key" not in str(unreadable.value)
    assert str(unreadable.value).startswith("Temporal profile kreis: unreadable")
    with pytest.raises(CommandError, match="no Temporal config file at"):
        temporal_connect_config(
            settings_with(temporal_profile="kreis", temporal_config_file=tmp_path / "none.toml")
        )


async def test_a_profile_reaches_the_server_it_names(
    dev_env: WorkflowEnvironment, tmp_path: Path, db_dsn: str
) -> None:
    address = dev_env.client.service_client.config.target_host
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        f'[profile.office]\naddress = "{address}"\nnamespace = "default"\n', encoding="utf-8"
    )
    client = await connect_temporal(
        settings_with(temporal_profile="office", temporal_config_file=config_file)
    )
    assert client.service_client.config.target_host == address
    # The same through a command, the default address pointing nowhere.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "TEMPORAL_"))},
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(tmp_path / "home"),
        "TANDEM_TEMPORAL_PROFILE": "office",
        "TANDEM_TEMPORAL_CONFIG_FILE": str(config_file),
    }
    code, out, err = await tandem_cli(env, "list", "--json")
    assert code == 0, err
    assert out.strip().startswith("[")
