"""deploy/ as an operator gets it (issue 15): every command it runs is a real entry point,
every setting it sets is one the app reads, nginx accepts the site (HTTP and TLS), systemd
accepts the units, and the compose file is the YAML it claims. Running them: test_scale_out.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboard.config import ROOT

from .. import nginx_util

DEPLOY = nginx_util.DEPLOY
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
CONFIG_SOURCE = (ROOT / "dashboard" / "config.py").read_text(encoding="utf-8")


def entry_point(argv: list[str]) -> None:
    """`python -m feeds.X` names a module with a main; gunicorn's names a config file and a
    WSGI factory that exist. Anything else is not one of ours."""
    args = argv[argv.index("-m") + 1:] if "-m" in argv else []
    assert args, f"not `python -m …`: {argv}"
    if args[0] == "gunicorn":
        conf = args[args.index("-c") + 1]
        assert (ROOT / conf).is_file() or Path(conf.replace("/opt/command-wall", str(ROOT))
                                               ).is_file(), conf
        module, _, call = args[-1].partition(":")
        factory = call.partition("(")[0]
        assert callable(getattr(importlib.import_module(module), factory)), args[-1]
        return
    spec = importlib.util.find_spec(args[0])
    assert spec is not None and spec.origin, f"no module {args[0]}"
    if spec.submodule_search_locations:  # a package runs its __main__
        assert importlib.util.find_spec(f"{args[0]}.__main__"), f"{args[0]} has no __main__"
        return
    source = Path(spec.origin).read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":' in source, f"{args[0]} cannot run with -m"


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lists (systemd allows a key twice)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, _, value = line.partition("=")
        sections[current].append((key, value))
    return sections


def setting_names(text: str) -> set[str]:
    return set(re.findall(r"^\s*(?:#\s*)?((?:CC|REDIS)_[A-Z_]+)=", text, re.M))


def test_dep001_every_setting_deploy_sets_is_one_the_app_reads() -> None:
    example = (DEPLOY / "command-wall.env.example").read_text(encoding="utf-8")
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    names = setting_names(example)
    for service in compose["services"].values():
        names |= {k for k in (service.get("environment") or {}) if k.startswith("CC_")}
    names |= set(re.findall(r"(CC_[A-Z_]+)=", DOCKERFILE.read_text(encoding="utf-8")))
    for unit in SYSTEMD.iterdir():
        names |= {v.partition("=")[0] for k, v in read_unit(unit).get("Service", [])
                  if k == "Environment" and v.startswith("CC_")}
    assert {"REDIS_URL", "CC_HOST", "CC_TRUSTED_PROXIES", "CC_WS_PUBLIC_URL",
            "CC_WS_PORT", "CC_WEB_WORKERS"} <= names
    unread = {n for n in names if f'"{n}"' not in CONFIG_SOURCE}
    assert unread == set()


def test_dep002_compose_brings_up_valkey_and_every_process() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    commands = {name: s.get("command") for name, s in services.items()}
    ours = {name: cmd for name, cmd in commands.items()
            if services[name].get("image") == "command-wall:latest"}
    kinds = sorted(" ".join(cmd[:3]) if cmd[2] != "gunicorn" else "gunicorn"
                   for cmd in ours.values())
    assert kinds == ["gunicorn", "gunicorn", "python -m feeds.ingest",
                     "python -m feeds.ingest", "python -m feeds.relay",
                     "python -m feeds.relay", "python -m feeds.watch"]
    for cmd in ours.values():
        entry_point(cmd)
    assert services["valkey"]["image"].startswith("valkey/valkey")
    assert "--appendonly" in services["valkey"]["command"]  # what ingest acknowledged stays
    assert services["nginx"]["image"].startswith("nginx")
    for mount in services["nginx"]["volumes"]:  # the mounted files exist
        assert (DEPLOY / mount.split(":")[0]).is_file(), mount
    # the compose nginx's upstreams are the compose services, at the ports they listen on
    conf = (DEPLOY / "docker" / "nginx.conf").read_text(encoding="utf-8")
    upstream = set(re.findall(r"server ([a-z0-9-]+):(\d+)", conf))
    assert upstream == {("web-1", "8050"), ("web-2", "8050"), ("relay-1", "8765"),
                        ("relay-2", "8765")}
    assert {h for h, _ in upstream} <= set(services)
    for name in ("relay-1", "relay-2"):
        assert services[name]["environment"]["CC_WS_PORT"] == "8765"
        assert services[name]["environment"]["CC_HOST"] == "0.0.0.0"  # reachable by nginx


def test_dep003_the_dockerfile_copies_what_exists_and_runs_a_real_command() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd
    entry_point(yaml.safe_load(cmd.group(1)))
    # the build context's ignore file sits where BuildKit looks for it
    assert (DEPLOY / "docker" / "Dockerfile.dockerignore").is_file()


def test_dep004_systemd_units_run_real_entry_points_and_match_nginx() -> None:
    target = read_unit(SYSTEMD / "command-wall.target")
    wanted = [w for k, v in target["Unit"] if k == "Wants" for w in v.split()]
    for unit in wanted:
        template = re.sub(r"@[^.]+\.", "@.", unit)
        assert (SYSTEMD / template).is_file(), unit
    for path in SYSTEMD.glob("*.service"):
        service = dict(read_unit(path)["Service"])
        entry_point(shlex.split(service["ExecStart"]))
        assert service["Restart"] == "always"
        assert service["EnvironmentFile"] == "/etc/command-wall/env"
    # two of each that may run side by side, and the two ingests (active and standby)
    ports = {kind: sorted(int(u.split("@")[1].split(".")[0]) for u in wanted
                          if u.startswith(f"command-wall-{kind}@")) for kind in ("web", "relay")}
    assert len(ports["web"]) == 2 and len(ports["relay"]) == 2
    assert sorted(u for u in wanted if "ingest" in u) == ["command-wall-ingest@a.service",
                                                          "command-wall-ingest@b.service"]
    site = (DEPLOY / "nginx" / "command-wall.conf").read_text(encoding="utf-8")
    for kind, upstream in (("web", "cc_web"), ("relay", "cc_relay")):
        block = re.search(rf"upstream {upstream} \{{.*?\}}", site, re.S)
        assert block
        assert sorted(map(int, re.findall(r"server 127\.0\.0\.1:(\d+)", block.group(0)))) == \
            ports[kind]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_dep005_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as systemd reads them, with /opt/command-wall pointed at this checkout."""
    import sys

    for path in SYSTEMD.iterdir():
        text = path.read_text(encoding="utf-8")
        text = text.replace("/opt/command-wall/.venv/bin/python", sys.executable)
        text = text.replace("/opt/command-wall", str(ROOT))
        text = text.replace("/etc/command-wall/env", str(tmp_path / "env"))
        text = text.replace("/var/lib/command-wall", str(tmp_path))
        text = re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.M)
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    (tmp_path / "env").write_text("REDIS_URL=redis://127.0.0.1:6379/0\n")
    units = ["command-wall-web@8050.service", "command-wall-relay@8765.service",
             "command-wall-ingest@a.service", "command-wall-watch.service",
             "command-wall.target"]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *(f"./{u}" for u in units)], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


@nginx_util.needs_nginx
def test_dep006_nginx_accepts_the_site_and_its_tls_server(tmp_path: Path) -> None:
    cert, key = nginx_util.self_signed(tmp_path)
    site = nginx_util.render_site(18080, [18050, 18051], [18765, 18766])
    tls = nginx_util.render_tls(18443, cert, key)
    conf = nginx_util.main_conf(tmp_path, [site, tls])
    done = nginx_util.check(tmp_path, conf)
    assert done.returncode == 0, done.stderr
    assert "warn" not in done.stderr, done.stderr
