"""mmkit.media.fetch: MediaPolicy bounds on http(s), data:, file:// and local paths, against a local server."""
from __future__ import annotations

import base64
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mmkit.exceptions import MediaError, UnsafeSourceError, UsageError
from mmkit.media import fetch
from mmkit.media.fetch import DEFAULT_MEDIA_POLICY, MediaPolicy, is_public_address, read_source

BODY = b"\x89PNG fake body " * 100  # 1500 bytes
TRUSTING = MediaPolicy(allow_private_addresses=True, timeout_s=5.0)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect-to"):].replace("/host/", "http://", 1))
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(301)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        body = BODY * 100 if self.path == "/big-no-length" else BODY
        self.send_response(200)
        if self.path != "/big-no-length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients that hang up early (size/timeout tests) are expected
        pass


@pytest.fixture(scope="module")
def server():
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_default_policy_refuses_loopback(server):
    with pytest.raises(UnsafeSourceError) as info:
        read_source(server + "/ok")
    assert "127.0.0.1" in str(info.value) and "allow_private_addresses" in info.value.fix


def test_hostname_is_checked_after_dns_resolution(server):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(UnsafeSourceError, match="non-public address"):
        read_source(f"http://localhost:{port}/ok")


def test_private_addresses_allowed_on_opt_in(server):
    got = read_source(server + "/ok", policy=TRUSTING)
    assert got.data == BODY and got.path is None


def test_body_over_max_bytes_is_refused_with_and_without_content_length(server):
    small = MediaPolicy(allow_private_addresses=True, max_bytes=1000)
    with pytest.raises(MediaError, match="max_bytes=1000"):
        read_source(server + "/ok", policy=small)
    with pytest.raises(MediaError, match="max_bytes=1000"):
        read_source(server + "/big-no-length", policy=small)
    assert len(read_source(server + "/big-no-length", policy=TRUSTING).data) == len(BODY) * 100


def test_slow_server_times_out(server):
    start = time.monotonic()
    with pytest.raises(MediaError, match="timed out"):
        read_source(server + "/slow", policy=MediaPolicy(allow_private_addresses=True, timeout_s=0.3))
    assert time.monotonic() - start < 0.9


def test_http_error_status_and_redirect_bounds(server):
    with pytest.raises(MediaError, match="HTTP 404"):
        read_source(server + "/missing", policy=TRUSTING)
    with pytest.raises(MediaError, match="more than 5 redirects"):
        read_source(server + "/loop", policy=TRUSTING)
    host = server[len("http://"):]
    assert read_source(f"{server}/redirect-to/host/{host}/ok", policy=TRUSTING).data == BODY


def test_each_redirect_target_is_checked_again(server, monkeypatch):
    # Treat 127.0.0.1 as public, 127.0.0.2 as private: the first hop passes, the redirect must be refused.
    monkeypatch.setattr(fetch, "is_public_address", lambda address: address == "127.0.0.1")
    port = server.rsplit(":", 1)[1]
    assert read_source(server + "/ok").data == BODY
    with pytest.raises(UnsafeSourceError, match="127.0.0.2"):
        read_source(f"{server}/redirect-to/host/127.0.0.2:{port}/ok")


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("127.0.0.1", False), ("169.254.169.254", False), ("0.0.0.0", False),
    ("100.64.0.1", False), ("224.0.0.1", False), ("240.0.0.1", False), ("::1", False), ("fe80::1", False),
    ("fc00::1", False), ("::ffff:127.0.0.1", False), ("ff02::1", False),
])
def test_public_address_classification(address, public):
    assert is_public_address(address) is public


def test_data_urls():
    payload = base64.b64encode(b"hello media").decode()
    assert read_source(f"data:image/png;base64,{payload}").data == b"hello media"
    assert read_source("data:text/plain,hi%20there").data == b"hi there"
    with pytest.raises(MediaError, match="base64"):
        read_source("data:image/png;base64,@@not base64@@")
    with pytest.raises(MediaError, match="max_bytes=8"):
        read_source(f"data:image/png;base64,{payload}", policy=MediaPolicy(max_bytes=8))
    with pytest.raises(MediaError, match="no comma"):
        read_source("data:image/png;base64")


def test_local_paths_and_file_urls(tmp_path):
    target = tmp_path / "a b.bin"
    target.write_bytes(b"x")
    assert read_source(str(target)).path == target.resolve()
    assert read_source(target).path == target.resolve()
    assert read_source("file://" + str(target)).path == target.resolve()
    assert read_source(target.as_uri()).path == target.resolve()  # percent-encoded file URL
    with pytest.raises(MediaError, match="not found"):
        read_source(str(tmp_path / "nope.png"))
    with pytest.raises(MediaError, match="not a regular file"):
        read_source(str(tmp_path))
    assert read_source(b"raw").data == b"raw"


def test_allowed_roots_refuse_dotdot_and_symlink_escapes(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "in.bin").write_bytes(b"in")
    (outside / "secret.bin").write_bytes(b"secret")
    os.symlink(outside / "secret.bin", root / "link.bin")
    os.symlink(outside, root / "linkdir")
    policy = MediaPolicy(allowed_roots=(root,))
    assert read_source(str(root / "in.bin"), policy=policy).path == (root / "in.bin").resolve()
    for escape in (root / ".." / "outside" / "secret.bin", root / "link.bin", root / "linkdir" / "secret.bin"):
        with pytest.raises(UnsafeSourceError, match="outside the allowed roots"):
            read_source(str(escape), policy=policy)
        with pytest.raises(UnsafeSourceError):
            read_source("file://" + str(escape), policy=policy)
    assert read_source(str(root / "link.bin")).data is None  # without roots, symlinks are fine


def test_usage_errors():
    with pytest.raises(UsageError, match="unsupported URL scheme"):
        read_source("ftp://example.com/a.png")
    with pytest.raises(UsageError, match="path, URL or bytes"):
        read_source(12)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="positive int"):
        MediaPolicy(max_bytes=0)
    with pytest.raises(UsageError, match="tuple"):
        MediaPolicy(allowed_roots="/tmp")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        DEFAULT_MEDIA_POLICY.max_bytes = 1  # type: ignore[misc]  # frozen
    assert DEFAULT_MEDIA_POLICY.allow_private_addresses is False
    assert MediaPolicy(allowed_roots=["/tmp"]).allowed_roots == (Path("/tmp"),)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make a self-signed certificate")
def test_tls_is_always_verified(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(MediaError, match="TLS verification failed"):  # self-signed: refused even when trusted
            read_source(f"https://127.0.0.1:{httpd.server_address[1]}/ok", policy=TRUSTING)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pinned_https_connection_refuses_unverified_contexts():
    import ssl

    from mmkit.exceptions import UsageError
    from mmkit.media.fetch import PinnedHTTPSConnection

    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(UsageError, match="must verify certificates"):
        PinnedHTTPSConnection("example.org", 443, address="93.184.215.14", timeout=1.0, context=unverified)
    default = PinnedHTTPSConnection("example.org", 443, address="93.184.215.14", timeout=1.0)
    assert default._context.verify_mode == ssl.CERT_REQUIRED and default._context.check_hostname
