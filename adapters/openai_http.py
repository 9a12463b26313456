"""The HTTP side of the OpenAI-compatible backend: one JSON request or one server-sent-event stream, safely.

Owns `ServerClient`: POST/GET JSON to an OpenAI-compatible server (vLLM, SGLang, LMDeploy `/v1/...`) and
read `stream: true` answers as server-sent events. Rules, all on by default and none of them optional:

- TLS is always verified (`ssl.create_default_context()`); `ca_file=` adds a private CA bundle, nothing
  turns verification off.
- The server's host is resolved and checked before connecting, and the checked address is the one
  connected to: private, loopback, link-local and reserved addresses are refused unless
  `allow_private_addresses=True` (a vLLM on localhost is the common case: the error says how to allow it).
- Every response is bounded: `max_response_bytes` (counted while reading) and `timeout_s` (one deadline
  for connecting, sending, waiting and reading, streams included).
- No proxy is used: `http.client` connects directly and ignores `HTTP(S)_PROXY` / `NO_PROXY`.
- Redirects are not followed (a POST body must not be re-sent elsewhere).

Failures become `ServerError` carrying the server's own error message (OpenAI's `{"error": {"message"}}`,
vLLM's `{"message"}`, FastAPI's `{"detail"}`); refused addresses become `UnsafeSourceError`.
This module knows nothing about models, messages or answers.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit

from mmkit.exceptions import MmkitError, ServerError, UnsafeSourceError, UsageError
from mmkit.media import is_public_address
from mmkit.media.fetch import PinnedHTTPConnection, PinnedHTTPSConnection, read_bounded, remaining

__all__ = ["ServerClient", "split_base_url"]

_ERROR_BODY_BYTES = 64 * 1024  # an error page is read up to this many bytes for its message


def split_base_url(base_url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a server's base URL; the prefix ends in "/v1" unless given.

    "http://localhost:8000" and "http://localhost:8000/v1" both give the prefix "/v1"; any other path
    ("https://host/api/openai/v1") is kept as written.

    Raises:
        UsageError: not an http(s) URL with a host, or it carries a query, fragment or credentials.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise UsageError("base_url must be a non-empty URL", received=base_url, fix='Pass e.g. "http://localhost:8000/v1"')
    parts = urlsplit(base_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError("base_url must be an http:// or https:// URL with a host", received=base_url,
                         fix='Pass e.g. "http://localhost:8000/v1"')
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("base_url must not carry a query, fragment or user:password", received=base_url,
                         fix="Pass the server root or its /v1 prefix; give the key as api_key=")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as err:
        raise UsageError(f"base_url has an invalid port: {err}", received=base_url) from err
    prefix = parts.path.rstrip("/") or "/v1"
    return parts.scheme.lower(), parts.hostname, port, prefix


@dataclass(frozen=True)
class ServerClient:
    """Talks JSON to one OpenAI-compatible server.

    Attributes:
        base_url: the server root or its `/v1` prefix, as the caller gave it.
        timeout_s: one deadline per request: connect, send, wait for and read the whole answer (streams too).
        max_response_bytes: the largest answer accepted (a stream counts all its events).
        allow_private_addresses: connect to loopback / private / link-local hosts (a local vLLM).
        ca_file: a PEM bundle of extra CAs trusted for https (verification itself is always on).
        api_key: sent as `Authorization: Bearer <key>` when set; never shown in reprs or errors.
    """

    base_url: str
    timeout_s: float = 300.0
    max_response_bytes: int = 16 * 1024 * 1024
    allow_private_addresses: bool = False
    ca_file: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        split_base_url(self.base_url)
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) or self.timeout_s <= 0:
            raise UsageError("timeout_s must be a positive number of seconds", received=self.timeout_s, fix="Pass e.g. 300")
        size = self.max_response_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise UsageError("max_response_bytes must be a positive int", received=size, fix="Pass e.g. 16 * 1024 * 1024")
        if self.ca_file is not None:
            try:
                ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as err:
                raise UsageError(f"ca_file cannot be read as a PEM CA bundle: {err}", received=self.ca_file,
                                 fix="Pass the path of a PEM file with the CA certificate(s)") from err

    # ------------------------------------------------------------------------------------------- public
    def check_address(self) -> str:
        """Resolve the server's host and apply the private-address rule; returns the address to connect to."""
        _, host, port, _ = split_base_url(self.base_url)
        try:
            addresses = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
        except OSError as err:
            raise ServerError(f"Cannot resolve the server host {host!r}: {err}", received=self.base_url,
                                   fix="Check base_url") from err
        if not addresses:
            raise ServerError(f"The server host {host!r} resolves to no address", received=self.base_url,
                                   fix="Check base_url")
        refused = [a for a in addresses if not is_public_address(a)]
        if refused and not self.allow_private_addresses:
            raise UnsafeSourceError(
                f"The server host {host!r} resolves to the non-public address {refused[0]} (loopback, private, "
                "link-local or reserved); such servers are refused by default",
                received=self.base_url,
                fix="For a server you run yourself (vLLM / SGLang on localhost or your LAN) pass "
                    "allow_private_addresses=True to RemoteVisionLanguageModel.connect(...)",
            )
        return addresses[0]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST `body` as JSON to `<prefix><path>` and return the decoded JSON answer."""
        with self._exchange("POST", path, body) as (response, read):
            return _decode_json(read(self.max_response_bytes), self._url(path))

    def get(self, path: str) -> Any:
        """GET `<prefix><path>` and return the decoded JSON answer."""
        with self._exchange("GET", path, None) as (response, read):
            return _decode_json(read(self.max_response_bytes), self._url(path))

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST `body` and yield each server-sent event's JSON payload until `data: [DONE]`.

        The request is sent (and an HTTP error raised) when the first event is asked for.

        Raises:
            ServerError: HTTP error, timeout, too many bytes, an event that is not JSON, an `error`
                event, or a stream that ends without `[DONE]`.
        """
        url = self._url(path)
        with self._exchange("POST", path, body) as (response, read):
            read_line = self._line_reader(response, read)
            data: list[str] = []
            while (line := read_line()) is not None:
                if line:
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    continue  # comments (":"), "event:", "id:" and "retry:" fields carry nothing we use
                if not data:
                    continue
                payload, data = "\n".join(data), []
                if payload.strip() == "[DONE]":
                    return
                event = _decode_json(payload.encode(), url)
                if isinstance(event, dict) and "error" in event:
                    raise ServerError(f"The server reported an error mid-stream: {_error_message(event)}",
                                           received=url, fix="Check the server's log")
                yield event
        raise ServerError("The event stream ended without its closing 'data: [DONE]'", received=url,
                               fix="The server closed the connection early; check its log")

    # ------------------------------------------------------------------------------------------ helpers
    def _url(self, path: str) -> str:
        scheme, host, port, prefix = split_base_url(self.base_url)
        return f"{scheme}://{host}:{port}{prefix}{path}"

    @contextmanager
    def _exchange(self, method: str, path: str, body: dict[str, Any] | None) -> Iterator[tuple[Any, Any]]:
        """Connect, send, check the status; yields (response, read(limit) -> bytes). Errors are typed."""
        url = self._url(path)
        deadline = time.monotonic() + self.timeout_s
        conn = None
        try:
            with self._typed_errors(url):
                conn, response, sock = self._send(method, path, body, deadline)

                def read(limit: int, *, one_chunk: bool = False) -> bytes:
                    configured = self.max_response_bytes  # `limit` is what is left of it
                    return read_bounded(response, sock, limit, deadline, one_chunk=one_chunk,
                                        too_large=lambda received: _too_large(configured, received, url))

                if not 200 <= response.status < 300:
                    raise _http_error(response, read, url)
            with self._typed_errors(url):  # errors while the caller reads are typed too
                yield response, read
        finally:
            if conn is not None:
                conn.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None, deadline: float) -> tuple[Any, Any, Any]:
        scheme, host, port, prefix = split_base_url(self.base_url)
        address = self.check_address()
        if scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_file)  # verifying; ca_file adds a private CA
            conn: http.client.HTTPConnection = PinnedHTTPSConnection(
                host, port, address=address, timeout=remaining(deadline), context=context)
        else:
            conn = PinnedHTTPConnection(host, port, address=address, timeout=remaining(deadline))
        headers = {"Accept": "application/json, text/event-stream", "Accept-Encoding": "identity",
                   "User-Agent": "mmkit/0.1"}
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.request(method, prefix + path, body=payload, headers=headers)
            sock = conn.sock  # kept: getresponse() may hand the socket over to the response
            sock.settimeout(remaining(deadline))
            return conn, conn.getresponse(), sock
        except BaseException:
            conn.close()
            raise

    def _line_reader(self, response: Any, read: Any) -> Any:
        """`read_line() -> str | None`: the next SSE line without its end, None at the end of the body."""
        budget = [self.max_response_bytes]
        buffer = [b""]

        def read_line() -> str | None:
            while b"\n" not in buffer[0]:
                chunk = read(budget[0], one_chunk=True)
                if not chunk:
                    if not buffer[0]:
                        return None
                    line, buffer[0] = buffer[0], b""
                    return line.decode("utf-8", "replace").rstrip("\r")
                budget[0] -= len(chunk)
                buffer[0] += chunk
            line, buffer[0] = buffer[0].split(b"\n", 1)
            return line.decode("utf-8", "replace").rstrip("\r")

        return read_line

    @contextmanager
    def _typed_errors(self, url: str) -> Iterator[None]:
        try:
            yield
        except MmkitError:
            raise
        except (socket.timeout, TimeoutError) as err:
            raise ServerError(f"The server did not answer within timeout_s={self.timeout_s}", received=url,
                                   fix="Raise timeout_s, lower max_new_tokens, or check the server is not overloaded") from err
        except ConnectionRefusedError as err:
            raise ServerError("Connection refused: no server is listening there", received=url,
                                   fix="Start the server (e.g. `vllm serve <model>`) or check base_url's host and port") from err
        except (ssl.SSLError, ssl.CertificateError) as err:
            raise ServerError(f"TLS verification failed: {err}", received=url,
                                   fix="The server's certificate must be valid; pass ca_file= for a private CA "
                                       "(verification is never turned off)") from err
        except (OSError, http.client.HTTPException) as err:
            raise ServerError(f"The request failed: {type(err).__name__}: {err}", received=url,
                                   fix="Check the server is running and reachable") from err


def _too_large(limit: int, received: Any, url: str) -> ServerError:
    return ServerError(f"The server's answer is larger than max_response_bytes={limit}", received=received,
                            fix=f"Raise max_response_bytes, or lower max_new_tokens ({url})")


def _decode_json(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ServerError(f"The server's answer is not JSON: {err}", received=raw[:200],
                               fix=f"Check that {url} is an OpenAI-compatible endpoint") from err


def _error_message(data: Any) -> str:
    """The message of an error body: OpenAI `{"error": {"message"}}`, vLLM `{"message"}`, FastAPI `{"detail"}`."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        for key in ("message", "detail"):
            if data.get(key):
                return data[key] if isinstance(data[key], str) else json.dumps(data[key])
    return json.dumps(data)[:500]


_FIXES = {
    401: "Pass api_key= (or set MMKIT_OPENAI_API_KEY) with the key the server was started with (vLLM: --api-key)",
    403: "Pass api_key= (or set MMKIT_OPENAI_API_KEY) with a key allowed to use this model",
    404: "Check base_url (the server root or its /v1 prefix) and model= (GET /v1/models lists the served names)",
    413: "Send fewer or smaller images (lower max_pixels) or raise the server's request size limit",
}


def _http_error(response: Any, read: Any, url: str) -> ServerError:
    status = response.status
    if 300 <= status < 400:
        return ServerError(f"The server redirected (HTTP {status}) to {response.getheader('Location')!r}; "
                                "redirects are not followed", received=url, fix="Use the final URL as base_url")
    try:
        raw = read(_ERROR_BODY_BYTES)
        message = _error_message(json.loads(raw.decode("utf-8")))
    except (MmkitError, UnicodeDecodeError, ValueError, OSError, http.client.HTTPException, TimeoutError):
        raw, message = b"", ""
    message = message or raw[:500].decode("utf-8", "replace").strip() or (response.reason or "")
    if status in _FIXES:
        fix = _FIXES[status]
    elif status >= 500:
        fix = "The server failed while answering; check its log"
    else:
        fix = ("Check the arguments against the server's limits (max_new_tokens vs --max-model-len, images per "
               "prompt vs vLLM's --limit-mm-per-prompt)")
    return ServerError(f"The server answered HTTP {status}: {message}", received=url, fix=fix)
