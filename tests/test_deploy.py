"""docker-compose.temporal.yml and the Dockerfile, checked without a Docker engine: the file parses,
every image is pinned, our services name only real settings (CONTRACT.md), the regional routing
is consistent, and the commands the image runs are real `warroom` commands."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from starters.cli import app as cli
from warroom.im.plugins import get_plugin, platform_names
from warroom.settings import Settings
from workers.main import GRACEFUL_SHUTDOWN
from workflows.incident import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.temporal.yml"
DOCKERFILE = ROOT / "Dockerfile"
OURS = ("warroom-migrate", "api", "worker", "worker-cn")
ONE_SHOT = ("temporal-schema", "temporal-setup", "warroom-migrate")
SETTING_NAMES = {f.validation_alias for f in Settings.model_fields.values()} | {
    f.validation_alias for name in platform_names() for f in get_plugin(name).settings_class.model_fields.values()
}
DEFAULT = re.compile(r"^\$\{(?P<name>\w+)(?::-(?P<default>.*))?\}$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def env(service: dict) -> dict[str, str]:
    """The service's environment, `${VAR:-default}` read as its default."""
    out = {}
    for name, value in (service.get("environment") or {}).items():
        m = DEFAULT.match(str(value))
        out[name] = (m.group("default") or "") if m else str(value)
    return out


def seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)(s|m)", duration)
    assert m, duration
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def test_the_file_parses_and_has_the_whole_shape(compose):
    assert set(services(compose)) == {"postgresql", "temporal", "temporal-ui", *ONE_SHOT, *OURS}
    assert services(compose)["warroom-migrate"]["restart"] == "no"  # one-shot: done means done
    assert "postgres-data" in compose["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services(compose)["postgresql"]["volumes"]
    temporal = services(compose)["temporal"]
    assert env(temporal)["DB"] == "postgres12" and env(temporal)["POSTGRES_SEEDS"] == "postgresql"


@pytest.mark.parametrize("name", ["postgresql", "temporal", "temporal-ui", *ONE_SHOT, *OURS])
def test_every_image_is_pinned(compose, name):
    image = services(compose)[name]["image"]
    if "@sha256:" in image:
        return
    repo, _, tag = image.rpartition(":")
    assert repo and tag and tag != "latest", image
    assert re.match(r"\d+\.\d+", tag), f"{image}: pin a full version, not a moving major tag"
    if name in OURS:
        assert services(compose)[name]["build"] == "."
    elif name != "postgresql":
        assert repo in ("temporalio/server", "temporalio/admin-tools", "temporalio/ui"), image


def test_dockerfile_base_images_are_pinned_and_it_copies_every_package():
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), bases
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "starters*" in packages
    for package in packages:  # every package the wheel ships, so a new one is not forgotten here
        assert re.search(rf"^COPY {package.rstrip('*')} ", text, re.M), package
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".warroom", "tests"} <= set(ignored)


@pytest.mark.parametrize("name", OURS)
def test_our_services_name_only_real_settings(compose, name):
    names = set(env(services(compose)[name]))
    assert names <= SETTING_NAMES, names - SETTING_NAMES
    Settings(**env(services(compose)[name]), _env_file=None)  # and the defaults are valid values
    contract = {"WARROOM_TEMPORAL_ADDRESS", "WARROOM_TASK_QUEUE", "WARROOM_DATABASE_URL", "WARROOM_PAYLOAD_KEY"}
    assert contract <= names


def test_regions_are_consistent(compose):
    s = services(compose)
    assert "WARROOM_REGION" not in env(s["worker"])  # the global worker: main queue, workflows
    assert env(s["worker-cn"])["WARROOM_REGION"] == "cn"
    api = Settings(**env(s["api"]), _env_file=None)
    bound = api.platform_region_map()
    assert bound == {"lark": "cn", "dingtalk": "cn", "wecom": "cn"}
    served = {env(s[w]).get("WARROOM_REGION", "") for w in ("worker", "worker-cn")}
    assert set(bound.values()) <= served  # every bound region has a worker
    for w in ("worker", "worker-cn"):  # and every worker routes like the API
        assert Settings(**env(s[w]), _env_file=None).im_task_queues() == api.im_task_queues()
    # China platforms' credentials live with the cn worker only; Slack's with the global one.
    assert "LARK_APP_SECRET" in env(s["worker-cn"]) and "LARK_APP_SECRET" not in env(s["worker"])
    assert "SLACK_BOT_TOKEN" in env(s["worker"]) and "SLACK_BOT_TOKEN" not in env(s["worker-cn"])


def test_healthchecks_dependencies_and_graceful_stop(compose):
    s = services(compose)
    for name, svc in s.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in svc, f"{name} has no healthcheck"
    for w in ("worker", "worker-cn"):
        assert seconds(s[w]["stop_grace_period"]) > GRACEFUL_SHUTDOWN.total_seconds()
        # The schema is migrated once, before any of War Room's processes starts.
        assert s[w]["depends_on"]["warroom-migrate"]["condition"] == "service_completed_successfully"
        # and Temporal is up with its namespace and search attributes: `warroom worker` exits 3
        # when it cannot connect, so without this it crash-loops until Temporal is ready.
        assert s[w]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
        port = env(s[w])["WARROOM_METRICS_PORT"]
        assert f"127.0.0.1:{port}/healthz" in " ".join(s[w]["healthcheck"]["test"])
    assert "127.0.0.1:8000/healthz" in " ".join(s["api"]["healthcheck"]["test"])
    assert s["api"]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert s["api"]["depends_on"]["warroom-migrate"]["condition"] == "service_completed_successfully"
    assert s["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert timedelta(seconds=20) == GRACEFUL_SHUTDOWN


def test_search_attributes_are_registered_as_keywords(compose):
    script = " ".join(services(compose)["temporal-setup"]["command"])
    listed = re.search(r"for name in ([\w ]+); do", script)
    assert listed and set(listed.group(1).split()) == {k.name for k in SEARCH_ATTRIBUTES}
    assert "--type Keyword" in script
    assert all(k.indexed_value_type.name == "KEYWORD" for k in SEARCH_ATTRIBUTES)


def test_codec_endpoint_is_offered_to_the_ui(compose):
    s = services(compose)
    ui = env(s["temporal-ui"])
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8000/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert env(s["api"])["WARROOM_CODEC_CORS_ORIGINS"] == "http://localhost:8080"


def _commands(compose: dict) -> list[list[str]]:
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.M)
    assert cmd, "the Dockerfile's CMD must be exec form"
    return [json.loads(cmd.group(1))] + [services(compose)[n]["command"] for n in OURS]


def test_the_images_commands_are_real_warroom_commands(compose):
    runner = CliRunner()
    for command in _commands(compose):
        assert command[0] == "warroom", command
        result = runner.invoke(cli, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{shlex.join(command)}: {result.output}"
    assert {tuple(c[:2]) for c in _commands(compose)} == {
        ("warroom", "api"),
        ("warroom", "worker"),
        ("warroom", "migrate"),
    }


def test_readme_deploying_section_uses_the_same_commands(compose):
    readme = (ROOT / "README.md").read_text()
    if "## Deploying" not in readme:
        pytest.skip("README has no Deploying section yet")
    section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    assert "docker compose -f docker-compose.temporal.yml up" in section
    for command in {shlex.join(c[:2]) for c in _commands(compose)}:
        assert command in section, command
