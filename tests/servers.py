"""Real servers for the test session, on free loopback ports: moto's S3 and an OpenStack Swift.

Swift runs as a Swift All-In-One from PyPI's ``swift`` package: the account, container, object
and proxy servers, one replica on one device in a temporary folder, with tempauth (fernet tokens,
so no memcached), tempurl and the S3 API on the proxy. It starts in about a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

SWIFT_USER, SWIFT_KEY, SWIFT_ACCOUNT = "test:tester", "testing", "AUTH_test"
SWIFT_TEMPURL_KEY = "tempurl-secret"
_FERNET_KEY = "ZmxfZnMtdGVzdC1zZXNzaW9uLWZlcm5ldC1rZXktMDE="  # 32 bytes, url-safe base64

_RING = r"""
import sys
from swift.common.ring import RingBuilder
folder, ports = sys.argv[1], dict(arg.split('=') for arg in sys.argv[2:])
for kind in ('account', 'container', 'object'):
    builder = RingBuilder(6, 1, 0)
    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(ports[kind]),
                     'device': 'd1', 'weight': 100.0, 'meta': ''})
    builder.rebalance()
    builder.get_ring().save(f'{folder}/{kind}.ring.gz')
"""

_STORE_CONF = """[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
devices = {devices}
mount_check = false
disable_fallocate = true
swift_dir = {etc}
log_level = WARNING

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""

_PROXY_CONF = """[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {etc}
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl formpost s3api tempauth
    copy slo dlo symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
fernet_key_1 = {fernet}
active_fernet_key_id = 1

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:slo]
use = egg:swift#slo
min_segment_size = 1

""" + "".join(
    f"[filter:{name}]\nuse = egg:swift#{egg}\n"
    for name, egg in [
        ("catch_errors", "catch_errors"),
        ("gatekeeper", "gatekeeper"),
        ("healthcheck", "healthcheck"),
        ("proxy-logging", "proxy_logging"),
        ("listing_formats", "listing_formats"),
        ("bulk", "bulk"),
        ("tempurl", "tempurl"),
        ("formpost", "formpost"),
        ("copy", "copy"),
        ("dlo", "dlo"),
        ("symlink", "symlink"),
    ]
)

_SWIFT_CONF = """[swift-hash]
swift_hash_path_prefix = flask-fs-tests
swift_hash_path_suffix = flask-fs-tests

[storage-policy:0]
name = Policy-0
default = yes
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class SwiftServer:
    """A running Swift All-In-One; ``endpoint`` serves the Swift API and the S3 API."""

    folder: str
    port: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    user: str = SWIFT_USER
    key: str = SWIFT_KEY

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.endpoint + "/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.endpoint}/v1/{SWIFT_ACCOUNT}"

    def token(self) -> str:
        request = urllib.request.Request(self.auth_url, headers={"X-Auth-User": self.user, "X-Auth-Key": self.key})
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.headers["X-Auth-Token"]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop_proxy(self) -> None:
        """Stop the proxy only (the server 'goes away'); :meth:`start_proxy` brings it back."""
        proc = self.procs.pop("proxy")
        proc.terminate()
        proc.wait(10)

    def start_proxy(self, timeout: float = 30) -> None:
        self._spawn("proxy")
        self._wait(timeout)

    def _spawn(self, kind: str) -> None:
        bindir = os.path.dirname(sys.executable)
        with open(os.path.join(self.folder, "log", f"{kind}.log"), "ab") as log:
            self.procs[kind] = subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(bindir, f"swift-{kind}-server"),
                    os.path.join(self.folder, "etc", f"{kind}-server.conf"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = {kind: p.returncode for kind, p in self.procs.items() if p.poll() is not None}
            if dead:
                raise RuntimeError(f"swift servers exited: {dead}, logs in {self.folder}/log")
            try:
                headers = {"X-Auth-Token": self.token()}
                request = urllib.request.Request(self.storage_url, method="HEAD", headers=headers)
                urllib.request.urlopen(request, timeout=2).close()
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"swift did not answer within {timeout}s, logs in {self.folder}/log")
                time.sleep(0.1)


def start_swift(timeout: float = 60) -> SwiftServer:
    """Start a Swift All-In-One (the ``swift`` package must be installed in this interpreter)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="flask-fs-swift-", dir=base)
    etc, devices = os.path.join(folder, "etc"), os.path.join(folder, "srv")
    for path in (etc, os.path.join(devices, "d1"), os.path.join(folder, "log")):
        os.makedirs(path)
    ports = {kind: free_port() for kind in ("account", "container", "object", "proxy")}
    with open(os.path.join(etc, "swift.conf"), "w") as f:
        f.write(_SWIFT_CONF)
    for kind in ("account", "container", "object"):
        with open(os.path.join(etc, f"{kind}-server.conf"), "w") as f:
            f.write(_STORE_CONF.format(kind=kind, port=ports[kind], devices=devices, etc=etc))
    with open(os.path.join(etc, "proxy-server.conf"), "w") as f:
        f.write(_PROXY_CONF.format(port=ports["proxy"], etc=etc, fernet=_FERNET_KEY))
    args = [f"{kind}={ports[kind]}" for kind in ("account", "container", "object")]
    subprocess.run([sys.executable, "-c", _RING, etc, *args], check=True)
    server = SwiftServer(folder, ports["proxy"])
    try:
        for kind in ("account", "container", "object", "proxy"):
            server._spawn(kind)
        server._wait(timeout)
        # The account's temp URL key, for the swift backend's signed URLs.
        request = urllib.request.Request(
            server.storage_url,
            method="POST",
            headers={"X-Auth-Token": server.token(), "X-Account-Meta-Temp-URL-Key": SWIFT_TEMPURL_KEY},
        )
        urllib.request.urlopen(request, timeout=5).close()
    except BaseException:
        server.stop()
        raise
    return server


def start_moto():
    """Start moto's S3 server in a thread; returns (server, endpoint URL)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


POSTGRES_BIN = "/usr/lib/postgresql/15/bin"


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (Debian's binaries) on a free loopback port, trusting local users."""

    folder: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _as_postgres(f"{POSTGRES_BIN}/pg_ctl -D {self.folder}/data -m fast -w stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_postgres(command: str) -> None:
    """Run a PostgreSQL tool as the ``postgres`` user when we are root (initdb refuses root)."""
    args = ["su", "postgres", "-s", "/bin/sh", "-c", command] if os.getuid() == 0 else ["/bin/sh", "-c", command]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def start_postgres() -> PostgresServer:
    """initdb a cluster in a temporary folder and start it; RuntimeError saying why when it cannot."""
    if not os.path.exists(f"{POSTGRES_BIN}/initdb"):
        raise RuntimeError(f"PostgreSQL 15 is not installed ({POSTGRES_BIN}): apt-get install postgresql")
    folder = tempfile.mkdtemp(prefix="flask-fs-pg-")
    if os.getuid() == 0:
        shutil.chown(folder, "postgres")
    port = free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    try:
        _as_postgres(f"{POSTGRES_BIN}/initdb -D {folder}/data -A trust -U postgres")
        _as_postgres(f"{POSTGRES_BIN}/pg_ctl -D {folder}/data -l {folder}/pg.log -w start -o '{options}'")
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc}") from exc
    return PostgresServer(folder, port)
@dataclass
class RedisServer:
    """A ``redis-server`` on a free loopback port, without persistence, in a temporary folder."""

    port: int
    folder: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def start_redis() -> RedisServer:
    """Start Debian's ``redis-server`` (installed by scripts/test.sh); RuntimeError if it is missing."""
    if shutil.which("redis-server") is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(free_port(), tempfile.mkdtemp(prefix="flask-fs-redis-"))
    server.start()
    return server


def main() -> None:
    """``python -m tests.servers``: run both servers until SIGTERM, printing their settings as JSON."""
    import json

    moto, endpoint = start_moto()
    swift = start_swift()
    print(
        json.dumps(
            {
                "FS_S3_ENDPOINT": endpoint,
                "FS_S3_ACCESS_KEY": "testing",
                "FS_S3_SECRET_KEY": "testing",
                "FS_SWIFT_AUTHURL": swift.auth_url,
                "FS_SWIFT_USER": swift.user,
                "FS_SWIFT_KEY": swift.key,
                "FS_SWIFT_TEMPURL_KEY": SWIFT_TEMPURL_KEY,
                "swift_s3_endpoint": swift.endpoint,
            }
        ),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        swift.stop()
        moto.stop()


if __name__ == "__main__":
    main()
