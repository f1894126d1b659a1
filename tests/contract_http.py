"""What every contract-test server in this suite shares: JSON replies, no request logging,
and a loopback server on a free port served from a background thread."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class Routes:
    """A server's REST surface: (method, path pattern, handler name) rows, each pattern
    matched against the whole path."""

    def __init__(self, table: list[tuple[str, str, str]]):
        self._routes = [(method, re.compile(f"^{pattern}$"), name) for method, pattern, name in table]

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The handler name and path parameters of the first row that matches, if any."""
        for route_method, pattern, name in self._routes:
            found = pattern.match(path)
            if found and route_method == method:
                return name, found.groupdict()
        return None


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and keeps quiet: tests assert on what a server
    recorded, not on its log."""

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def send_payload(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """JSON; a str as plain text (counts, logs); None as an empty body."""
        if payload is None:
            self._send(status, b"", None, headers)
        elif isinstance(payload, str):
            self._send(status, payload.encode(), "text/plain", headers)
        else:
            self.send_json(status, payload, headers)

    def _send(self, status: int, data: bytes, content_type: str | None, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def read_request(self) -> tuple[str, dict[str, list[str]], bytes | None]:
        """The request's path (unquoted), query and raw body (None when empty)."""
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        return unquote(url.path), parse_qs(url.query), self.rfile.read(length) if length else None

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], certificate: Path | None = None) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 at a free port; yields the base URL. With ``certificate``
    (a PEM holding the certificate and its key, see ``self_signed``) it serves HTTPS: SDKs send
    bearer tokens over HTTPS only."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    # shutdown() waits out one poll interval: the default 0.5 s would be most of a short test
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"{'https' if certificate else 'http'}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def self_signed(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and its key, in one PEM file that a client can
    also trust as its CA bundle."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "contract-server.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path
