"""Where media bytes come from, fetched safely: local paths, `file://`, `http(s)://`, `data:` URLs, raw bytes.

Owns `MediaPolicy` (every safety bound in one frozen dataclass) and `read_source()`. Safe by default:
downloads are bounded in bytes and seconds, TLS is always verified with the default SSL context, private,
loopback, link-local, reserved and multicast addresses are refused after DNS resolution (and again on every
redirect; the checked address is the one connected to, so DNS rebinding cannot swap it), redirects are
bounded, and local paths can be confined to allowed roots (symlinks resolved).

Knows nothing about pixels or models: it hands back bytes or a checked local path.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Union
from urllib.parse import unquote, unquote_to_bytes, urljoin, urlsplit

from ..exceptions import MediaError, UnsafeSourceError, UsageError

__all__ = ["MediaPolicy", "DEFAULT_MEDIA_POLICY", "FetchedSource", "MediaSource", "read_source", "is_public_address",
           "read_bounded", "remaining"]

MediaSource = Union[str, os.PathLike, bytes, bytearray, memoryview]
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class MediaPolicy:
    """Safety bounds applied to every image and video source. Frozen: make a new one to change a bound.

    TLS certificates are always verified (default SSL context); there is deliberately no field to turn it off.
    """

    # Largest body accepted from an http(s) URL or a data: URL, in bytes (checked while streaming).
    max_bytes: int = 128 * 1024 * 1024
    # Wall-clock limit for one http(s) download, connection and all redirects included, in seconds.
    timeout_s: float = 30.0
    # Refuse hosts resolving to private/loopback/link-local/reserved/multicast addresses unless True.
    allow_private_addresses: bool = False
    # At most this many http(s) redirects are followed; each target is checked like the first URL.
    max_redirects: int = 5
    # If set, local paths (and file:// URLs) must resolve, symlinks followed, inside one of these folders.
    allowed_roots: tuple[Path, ...] | None = None
    # Decompression-bomb limit: images (and video frames) with more pixels are refused before decoding.
    max_image_pixels: int = 89_478_485  # Pillow's own warning threshold (~ 9459 x 9459)
    # Sent as User-Agent on http(s) requests.
    user_agent: str = "mmkit/0.1"

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_image_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UsageError(f"MediaPolicy.{name} must be a positive int", received=value,
                                 fix=f"Pass {name}=<positive int>")
        if isinstance(self.max_redirects, bool) or not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise UsageError("MediaPolicy.max_redirects must be an int >= 0", received=self.max_redirects,
                             fix="Pass max_redirects=0 to refuse redirects")
        if not isinstance(self.timeout_s, (int, float)) or isinstance(self.timeout_s, bool) or self.timeout_s <= 0:
            raise UsageError("MediaPolicy.timeout_s must be a positive number", received=self.timeout_s,
                             fix="Pass timeout_s=<seconds>")
        if self.allowed_roots is not None:
            if isinstance(self.allowed_roots, (str, os.PathLike)):
                raise UsageError("MediaPolicy.allowed_roots must be a sequence of folders", received=self.allowed_roots,
                                 fix="Wrap the folder in a tuple: allowed_roots=(folder,)")
            object.__setattr__(self, "allowed_roots", tuple(Path(root) for root in self.allowed_roots))


DEFAULT_MEDIA_POLICY = MediaPolicy()


@dataclass(frozen=True)
class FetchedSource:
    """A source made local: exactly one of `path` (a checked local file) or `data` (bytes held in memory).

    `name` describes the origin for error messages (a path or URL, data URLs shortened).
    """

    name: str
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        """A binary file object positioned at the start; the caller closes it."""
        if self.path is not None:
            try:
                return open(self.path, "rb")
            except OSError as err:
                raise MediaError(f"cannot open {self.name}: {err.strerror or err}", received=str(self.path),
                                 fix="Check the file exists and is readable") from err
        return io.BytesIO(self.data or b"")


def read_source(source: MediaSource, *, policy: MediaPolicy = DEFAULT_MEDIA_POLICY) -> FetchedSource:
    """Make a media source local, applying `policy`; local files are checked, not read.

    Args:
        source: a local path (str or `os.PathLike`), a `file://`, `http://`, `https://` or `data:` URL, or
            raw bytes.
        policy: the safety bounds (see `MediaPolicy`).

    Returns:
        A `FetchedSource` with `path` (local files) or `data` (URLs, bytes).

    Raises:
        UsageError: the source has an unsupported type or URL scheme.
        UnsafeSourceError: a safety rule refused it (private address, path outside `allowed_roots`).
        MediaError: it could not be read (missing file, HTTP error, timeout, too many bytes, bad base64).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return FetchedSource(name=f"<{len(data)} bytes>", data=data)
    if isinstance(source, os.PathLike):
        return FetchedSource(name=os.fspath(source), path=_check_local_path(Path(source), policy))
    if not isinstance(source, str):
        raise UsageError("a media source must be a path, URL or bytes", received=type(source).__name__,
                         fix="Pass a str/Path path, a file://, http(s):// or data: URL, or bytes")
    lowered = source[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return FetchedSource(name=source, data=_download(source, policy))
    if lowered.startswith("data:"):
        name = source[:40] + ("..." if len(source) > 40 else "")
        return FetchedSource(name=name, data=_decode_data_url(source, policy))
    if lowered.startswith("file://"):
        return FetchedSource(name=source, path=_check_local_path(_file_url_path(source), policy))
    scheme = urlsplit(source).scheme
    if len(scheme) > 1 and "://" in source:  # "C:\\x" has a one-letter scheme and stays a path
        raise UsageError("unsupported URL scheme", received=source,
                         fix="Use a local path, or a file://, http://, https:// or data: URL")
    if not source:
        raise UsageError("the media source is an empty string", received=source, fix="Pass a path or URL")
    return FetchedSource(name=source, path=_check_local_path(Path(source), policy))


# ---------------------------------------------------------------- local files


def _file_url_path(url: str) -> Path:
    # qwen-vl-utils takes everything after "file://" as the path; we do the same, then also accept
    # percent-encoded URLs (as written by Path.as_uri()) when the literal path does not exist.
    raw = url[len("file://"):]
    if raw.startswith("localhost/"):
        raw = raw[len("localhost"):]
    if not os.path.exists(raw) and unquote(raw) != raw:
        raw = unquote(raw)
    return Path(raw)


def _check_local_path(path: Path, policy: MediaPolicy) -> Path:
    try:
        resolved = path.expanduser().resolve(strict=True)
    except FileNotFoundError as err:
        raise MediaError("media file not found", received=str(path), fix="Check the path") from err
    except (OSError, RuntimeError) as err:  # RuntimeError: symlink loop on older Pythons
        raise MediaError(f"cannot resolve media path: {err}", received=str(path), fix="Check the path") from err
    if policy.allowed_roots is not None:
        roots = [Path(root).expanduser().resolve() for root in policy.allowed_roots]
        if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
            raise UnsafeSourceError(
                f"path resolves to {resolved}, outside the allowed roots {[str(r) for r in roots]}",
                received=str(path),
                fix="Move the file under an allowed root or add its folder to MediaPolicy.allowed_roots",
            )
    if not resolved.is_file():
        raise MediaError("media path is not a regular file", received=str(path), fix="Pass a file, not a folder")
    return resolved


# ---------------------------------------------------------------- data: URLs


def _decode_data_url(url: str, policy: MediaPolicy) -> bytes:
    header, sep, payload = url[len("data:"):].partition(",")
    if not sep:
        raise MediaError("malformed data: URL (no comma)", received=url[:60],
                         fix="Use data:<mime>;base64,<payload>")
    is_base64 = header.lower().endswith(";base64")
    # Bound before decoding: base64 expands 3 bytes into 4 characters.
    estimate = len(payload) * 3 // 4 if is_base64 else len(payload)
    if estimate > policy.max_bytes:
        raise MediaError(f"data: URL payload is larger than max_bytes={policy.max_bytes}", received=estimate,
                         fix="Pass a smaller payload or raise MediaPolicy.max_bytes")
    if not is_base64:
        data = unquote_to_bytes(payload)
    else:
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError) as err:
            raise MediaError(f"invalid base64 in data: URL: {err}", received=url[:60],
                             fix="Encode the payload with base64.b64encode") from err
    if len(data) > policy.max_bytes:
        raise MediaError(f"data: URL payload is larger than max_bytes={policy.max_bytes}", received=len(data),
                         fix="Pass a smaller payload or raise MediaPolicy.max_bytes")
    return data


# ---------------------------------------------------------------- http(s)


def is_public_address(address: str) -> bool:
    """True if `address` is a globally routable unicast IP (not private, loopback, link-local, reserved, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (DNS), in resolver order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _pick_address(host: str, port: int, policy: MediaPolicy, url: str) -> str:
    try:
        addresses = _resolve(host, port)
    except OSError as err:
        raise MediaError(f"cannot resolve host {host!r}: {err}", received=url, fix="Check the URL") from err
    if not addresses:
        raise MediaError(f"host {host!r} resolves to no address", received=url, fix="Check the URL")
    if not policy.allow_private_addresses:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise UnsafeSourceError(
                f"host {host!r} resolves to a non-public address {refused[0]} (private, loopback, link-local, "
                "reserved or multicast)",
                received=url,
                fix="Fetch the file yourself, or pass MediaPolicy(allow_private_addresses=True) if you trust it",
            )
    return addresses[0]


# The pinned connections are shared with `mmkit.adapters.openai_http` (same rule: connect to the checked
# address); they are not part of `mmkit.media`'s API, hence not in `__all__`.
class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to an address checked beforehand (the Host header keeps the name)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand; certificate and host name verified by `context`.

    Args:
        host: the name the certificate must match (and the Host header).
        port: the TCP port.
        address: the checked IP address to connect to.
        timeout: seconds for connecting (and for each socket wait until changed).
        context: a verifying `ssl.SSLContext` (e.g. with an extra CA); default: `ssl.create_default_context()`.

    Raises:
        UsageError: `context` does not verify certificates and host names.
    """

    def __init__(self, host: str, port: int, *, address: str, timeout: float,
                 context: ssl.SSLContext | None = None) -> None:
        if context is None:
            context = ssl.create_default_context()
        elif context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
            raise UsageError("context must verify certificates and host names", received=context,
                             fix="Use ssl.create_default_context(cafile=...) for a private CA; TLS is never unverified")
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _download(url: str, policy: MediaPolicy) -> bytes:
    deadline = time.monotonic() + policy.timeout_s
    current = url
    for _ in range(policy.max_redirects + 1):
        try:
            status, location, body = _request(current, policy, deadline)
        except (socket.timeout, TimeoutError) as err:
            raise MediaError(f"download timed out after {policy.timeout_s} s", received=url,
                             fix="Raise MediaPolicy.timeout_s or use a faster server") from err
        except (ssl.SSLError, ssl.CertificateError) as err:
            raise MediaError(f"TLS verification failed: {err}", received=url,
                             fix="The server's certificate must be valid; TLS is never unverified") from err
        except (OSError, http.client.HTTPException) as err:
            raise MediaError(f"download failed: {type(err).__name__}: {err}", received=url,
                             fix="Check the URL and the network") from err
        if location is None:
            return body
        current = urljoin(current, location)
        if urlsplit(current).scheme.lower() not in ("http", "https"):
            raise UnsafeSourceError("redirect to a non-http(s) URL refused", received=current,
                                    fix="Use the final URL directly if it is a file you trust")
    raise MediaError(f"more than {policy.max_redirects} redirects", received=url,
                     fix="Use the final URL directly or raise MediaPolicy.max_redirects")


def _request(url: str, policy: MediaPolicy, deadline: float) -> tuple[int, str | None, bytes]:
    """One GET: (status, redirect location or None, body). Checks the address before connecting."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.hostname is None:
        raise UsageError("URL has no host", received=url, fix="Use http(s)://host/path")
    port = parts.port or (443 if scheme == "https" else 80)
    address = _pick_address(parts.hostname, port, policy, url)
    left = remaining(deadline)
    if scheme == "https":
        conn: http.client.HTTPConnection = PinnedHTTPSConnection(
            parts.hostname, port, address=address, timeout=left)
    else:
        conn = PinnedHTTPConnection(parts.hostname, port, address=address, timeout=left)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"User-Agent": policy.user_agent, "Accept-Encoding": "identity"})
        sock = conn.sock  # kept: getresponse() may hand the socket over to the response
        sock.settimeout(remaining(deadline))
        response = conn.getresponse()
        if response.status in _REDIRECTS and response.getheader("Location"):
            return response.status, response.getheader("Location"), b""
        if not 200 <= response.status < 300:
            raise MediaError(f"HTTP {response.status} {response.reason}", received=url,
                             fix="Check the URL is reachable and public")
        return response.status, None, _read_body(response, sock, policy, deadline)
    finally:
        conn.close()


def _read_body(
    response: http.client.HTTPResponse, sock: socket.socket, policy: MediaPolicy, deadline: float
) -> bytes:
    def too_large(received: Any) -> MediaError:
        return MediaError(f"response is larger than max_bytes={policy.max_bytes}", received=received,
                          fix="Raise MediaPolicy.max_bytes if you expect files this large")

    return read_bounded(response, sock, policy.max_bytes, deadline, too_large=too_large)


def read_bounded(response: Any, sock: Any, limit: int, deadline: float, *, too_large: Callable[[Any], Exception],
                 one_chunk: bool = False) -> bytes:
    """The whole body of an HTTP response (or, with `one_chunk`, its next chunk, for streams), never more than
    `limit` bytes and never past the monotonic `deadline`: each socket wait is bounded by the time left.

    Raises:
        `too_large(received)` when the Content-Length or the bytes read exceed `limit`; TimeoutError when the
        deadline passes.
    """
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(int(length))
    chunks: list[bytes] = []
    size = 0
    while True:
        sock.settimeout(remaining(deadline))  # each wait is bounded by what is left of the deadline
        chunk = response.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise too_large(f">{limit}")
        chunks.append(chunk)
        if one_chunk:
            return chunk


def remaining(deadline: float) -> float:
    """Seconds left before the monotonic `deadline`; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left
