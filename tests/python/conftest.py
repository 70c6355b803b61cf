"""Fixtures: mock upstreams, a real `switchyard serve` process, gateway keys,
and OpenAI and Anthropic SDK clients pointed at the gateway.

Three kinds of upstream stand behind the gateway: mock OpenAI-compatible
servers (mock_openai.py: `primary`, `backup`), a mock Anthropic Messages API
(mock_anthropic.py) and a mock Gemini API (mock_gemini.py), each behind a
channel of its type. The `upstream` fixture parametrises a test over the
three types (upstreams.py describes their routes and wire formats).

The binary is built by the caller (tests/run-all.sh). It is found through
SWITCHYARD_BIN, or else at $CARGO_TARGET_DIR/debug/switchyard with
CARGO_TARGET_DIR defaulting to ~/.cache/switchyard-target.

One gateway serves the whole session. Tests stay independent of order: every
mock fault and recorded request is cleared after each test, and tests that
make an upstream misbehave use routes (and upstream model ids) of their own,
so no circuit breaker opened by one test affects another.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import anthropic
import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mock_anthropic import MockAnthropic  # noqa: E402
from mock_gemini import MockGemini  # noqa: E402
from mock_openai import MockUpstream  # noqa: E402
from upstreams import (  # noqa: E402
    CHANNELS,
    EMBED_ROUTES,
    KINDS,
    MOCK_ANTHROPIC_KEY,
    MOCK_GEMINI_KEY,
    MOCK_KEY,
    ROUTES,
    UPSTREAM_CLASSES,
    Upstream,
    model_name,
    routes_toml,
)
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
CLI_TIMEOUT_S = 60
CLIENT_TIMEOUT_S = 30

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LISTENING = re.compile(r"Switchyard is listening on (http://\S+?/v1)\b")


def switchyard_bin() -> Path:
    explicit = os.environ.get("SWITCHYARD_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "switchyard-target")
    return Path(target) / "debug" / "switchyard"


@dataclass
class Gateway:
    url: str  # http://127.0.0.1:PORT/v1
    bin: Path
    config: Path
    data_dir: Path
    keys: dict[str, str]
    log: list[str] = field(repr=False)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_cli(self.bin, self.config, self.data_dir, *args, check=check)

    @property
    def root(self) -> str:
        """http://127.0.0.1:PORT, the base URL Anthropic's SDK wants."""
        return self.url.removesuffix("/v1")

    def client(self, key: str | None = None, **kw) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=key if key is not None else self.keys["default"],
            base_url=self.url,
            max_retries=0,
            timeout=CLIENT_TIMEOUT_S,
            **kw,
        )

    def anthropic_client(self, key: str | None = None, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=key if key is not None else self.keys["default"],
            base_url=self.root,
            max_retries=0,
            timeout=CLIENT_TIMEOUT_S,
            **kw,
        )


def run_cli(bin_: Path, config: Path, data_dir: Path, *args: str, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(bin_), "--config", str(config), "--data-dir", str(data_dir), *args],
        stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8", errors="replace",
        timeout=CLI_TIMEOUT_S, env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"switchyard {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def create_key(bin_: Path, config: Path, data_dir: Path, name: str, *extra: str) -> str:
    proc = run_cli(bin_, config, data_dir, "key", "create", name, *extra)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines, f"`key create {name}` printed no key; stderr:\n{proc.stderr}"
    key = lines[-1].strip()
    assert key.startswith("sy-"), f"unexpected key line {key!r}"
    return key


def config_text(primary: MockUpstream, backup: MockUpstream, anthropic_up: MockAnthropic,
                gemini_up: MockGemini) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"

# The tests are about routing, not balances: let an empty bucket go negative
# rather than refuse with 402.
[buckets.credit]
on_empty = "allow"

[buckets.wallet]
on_empty = "allow"

[[channels]]
id = "primary"
type = "openai-compatible"
brand = "Mock Primary"
base_url = "{primary.base_url}"
bucket = "credit"
secret = "env:MOCK_KEY"

[[channels]]
id = "backup"
type = "openai-compatible"
brand = "Mock Backup"
base_url = "{backup.base_url}"
bucket = "credit"
secret = "none"

# Passthrough: the backup's own `local-*` models under their own names.
[[channels]]
id = "local"
type = "openai-compatible"
brand = "Mock Local"
base_url = "{backup.base_url}"
bucket = "credit"
secret = "none"
models = ["local-*"]

[[channels]]
id = "anth"
type = "anthropic"
brand = "Mock Anthropic"
base_url = "{anthropic_up.base_url}"
bucket = "credit"
secret = "env:MOCK_ANTHROPIC_KEY"

[[channels]]
id = "gem"
type = "gemini"
brand = "Mock Gemini"
base_url = "{gemini_up.base_url}"
bucket = "credit"
secret = "env:MOCK_GEMINI_KEY"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "primary", model = "up-model-a" }}, {{ channel = "backup", model = "up-model-b" }}]

# Routes of their own for tests that make an upstream misbehave.
[[routes]]
model = "gpt-failover"
targets = [{{ channel = "primary", model = "up-failover-a" }}, {{ channel = "backup", model = "up-failover-b" }}]

[[routes]]
model = "gpt-sfailover-503"
targets = [{{ channel = "primary", model = "up-sf503-a" }}, {{ channel = "backup", model = "up-sf503-b" }}]

[[routes]]
model = "gpt-sfailover-cut"
targets = [{{ channel = "primary", model = "up-sfcut-a" }}, {{ channel = "backup", model = "up-sfcut-b" }}]

[[routes]]
model = "gpt-cut"
targets = [{{ channel = "primary", model = "up-cut-a" }}, {{ channel = "backup", model = "up-cut-b" }}]

[[routes]]
model = "gpt-relay-400"
targets = [{{ channel = "primary", model = "up-relay-a" }}, {{ channel = "backup", model = "up-relay-b" }}]

[[routes]]
model = "gpt-all-down"
targets = [{{ channel = "primary", model = "up-down-a" }}, {{ channel = "backup", model = "up-down-b" }}]

[[routes]]
model = "gpt-slow"
timeouts = {{ first_byte_s = 1.0 }}
targets = [{{ channel = "primary", model = "up-slow-a" }}, {{ channel = "backup", model = "up-slow-b" }}]

[[routes]]
model = "gpt-stall-first"
timeouts = {{ first_token_s = 1.0 }}
targets = [{{ channel = "primary", model = "up-stall-a" }}, {{ channel = "backup", model = "up-stall-b" }}]

[[routes]]
model = "gpt-idle"
timeouts = {{ idle_s = 1.0 }}
targets = [{{ channel = "primary", model = "up-idle-a" }}, {{ channel = "backup", model = "up-idle-b" }}]

[[routes]]
model = "other-alpha"
targets = [{{ channel = "backup", model = "up-other-alpha" }}]

[[routes]]
model = "other-beta"
targets = [{{ channel = "primary", model = "up-other-beta" }}]

# Per upstream type (upstreams.py): via-openai, via-anthropic, via-gemini,
# their misbehaving twins, and the embeddings routes.
""" + routes_toml()


# Every public model name the config above exposes (routes + passthrough).
ROUTED_MODELS = {"gpt-test", "gpt-failover", "gpt-sfailover-503", "gpt-sfailover-cut", "gpt-cut",
                 "gpt-relay-400", "gpt-all-down", "gpt-slow", "gpt-stall-first", "gpt-idle",
                 "other-alpha", "other-beta"} | ROUTES
PASSTHROUGH_MODELS = {"local-small", "local-large"}


@pytest.fixture(scope="session")
def primary() -> Iterator[MockUpstream]:
    m = MockUpstream("primary", api_key=MOCK_KEY, models=("up-model-a",))
    yield m
    m.close()


@pytest.fixture(scope="session")
def backup() -> Iterator[MockUpstream]:
    m = MockUpstream("backup", models=("up-model-b", "local-small", "local-large", "embed-x"))
    yield m
    m.close()


@pytest.fixture(scope="session")
def anthropic_up() -> Iterator[MockAnthropic]:
    m = MockAnthropic("anthropic", api_key=MOCK_ANTHROPIC_KEY, models=(model_name("anthropic"),))
    yield m
    m.close()


@pytest.fixture(scope="session")
def gemini_up() -> Iterator[MockGemini]:
    m = MockGemini("gemini", api_key=MOCK_GEMINI_KEY,
                   models=(model_name("gemini"), EMBED_ROUTES["gemini"][2]))
    yield m
    m.close()


@pytest.fixture(autouse=True)
def _clean_mocks(primary: MockUpstream, backup: MockUpstream, anthropic_up: MockAnthropic,
                 gemini_up: MockGemini) -> Iterator[None]:
    mocks = (primary, backup, anthropic_up, gemini_up)
    for m in mocks:
        m.reset()
    yield
    for m in mocks:
        m.reset()


@pytest.fixture(params=KINDS)
def upstream(request, primary: MockUpstream, anthropic_up: MockAnthropic,
             gemini_up: MockGemini) -> Upstream:
    """One upstream channel type (openai-compatible, anthropic, gemini) with
    its routes and mock; narrow it with
    `@pytest.mark.parametrize("upstream", [...], indirect=True)`."""
    mock = {"openai": primary, "anthropic": anthropic_up, "gemini": gemini_up}[request.param]
    return UPSTREAM_CLASSES[request.param](request.param, mock, CHANNELS[request.param])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGTERM the gateway if pytest itself dies (e.g. killed by a
    timeout), so no server outlives the test run."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def _drain(stream, sink: "queue.Queue[str]", log: list[str]) -> None:
    for line in iter(stream.readline, ""):
        log.append(line)
        sink.put(line)
    stream.close()


@pytest.fixture(scope="session")
def gateway(primary: MockUpstream, backup: MockUpstream, anthropic_up: MockAnthropic,
            gemini_up: MockGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    bin_ = switchyard_bin()
    if not bin_.is_file():
        pytest.fail(
            f"switchyard binary not found at {bin_}; build it first (`cargo build -p switchyard`) "
            "or point SWITCHYARD_BIN at it", pytrace=False,
        )
    root = tmp_path_factory.mktemp("switchyard")
    config = root / "switchyard.toml"
    data_dir = root / "data"
    config.write_text(config_text(primary, backup, anthropic_up, gemini_up))

    check = run_cli(bin_, config, data_dir, "config", "check", check=False)
    assert check.returncode == 0, f"config check failed:\n{check.stdout}\n{check.stderr}"

    keys = {
        "default": create_key(bin_, config, data_dir, "sdk-tests", "--project", "python-sdk"),
        "other": create_key(bin_, config, data_dir, "sdk-other", "--models", "other-*"),
        # Every route here is paid from Credit.
        "wallet": create_key(bin_, config, data_dir, "sdk-wallet", "--buckets", "wallet"),
    }

    env = dict(os.environ)
    env["MOCK_KEY"] = MOCK_KEY
    env["MOCK_ANTHROPIC_KEY"] = MOCK_ANTHROPIC_KEY
    env["MOCK_GEMINI_KEY"] = MOCK_GEMINI_KEY
    # Never touch a real keyring: this gateway's secrets come from env vars,
    # and its admin token lives for this run only.
    env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/switchyard-tests"
    env.setdefault("SWITCHYARD_LOG", "info")
    proc = subprocess.Popen(
        [str(bin_), "--config", str(config), "--data-dir", str(data_dir), "serve"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        encoding="utf-8", errors="replace", env=env,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    lines: "queue.Queue[str]" = queue.Queue()
    log: list[str] = []
    reader = threading.Thread(target=_drain, args=(proc.stderr, lines, log), daemon=True)
    reader.start()

    url = None
    deadline = time.monotonic() + START_TIMEOUT_S
    while url is None and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        m = LISTENING.search(line)
        if m:
            url = m.group(1)
    if url is None:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        reader.join(timeout=2)
        pytest.fail(f"`switchyard serve` did not report its address within {START_TIMEOUT_S}s "
                    f"(exit code {proc.returncode}); its stderr:\n{''.join(log)}", pytrace=False)

    gw = Gateway(url=url, bin=bin_, config=config, data_dir=data_dir, keys=keys, log=log)
    try:
        yield gw
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        reader.join(timeout=2)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    c = gateway.client()
    yield c
    c.close()


@pytest.fixture
def other_client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    c = gateway.client(gateway.keys["other"])
    yield c
    c.close()


@pytest.fixture
def claude(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    """The Anthropic SDK, pointed at the gateway with the default key."""
    c = gateway.anthropic_client()
    yield c
    c.close()


@pytest.fixture
def claude_other(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    """The Anthropic SDK with the key scoped to `other-*` models."""
    c = gateway.anthropic_client(gateway.keys["other"])
    yield c
    c.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):  # pragma: no cover - diagnostics only
    """On a failure, attach the tail of the gateway's log to the report."""
    if call.when != "call" or call.excinfo is None:
        return
    gw = item.funcargs.get("gateway") if hasattr(item, "funcargs") else None
    if gw is None:
        return
    tail = ANSI.sub("", "".join(gw.log[-20:]))
    item.add_report_section("call", "switchyard serve (stderr tail)", tail)
