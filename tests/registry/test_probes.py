"""The probes on their own (registry/checks.py) against a real HTTP target process and real TCP listeners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from accord.registry.checks import CRITICAL, PASSING, WARNING, Prober, tcp_probe, truncate_output
from tests.harness import running
from tests.server.consul.checks_harness import CheckTarget, Listener


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckTarget]:
    with running(CheckTarget(tmp_path_factory.mktemp("target"))) as process:
        yield process


@pytest.fixture
async def prober() -> AsyncIterator[Prober]:
    probes = Prober()
    try:
        yield probes
    finally:
        await probes.aclose()


@pytest.mark.parametrize(
    ("code", "status"), [(200, PASSING), (204, PASSING), (429, WARNING), (404, CRITICAL), (503, CRITICAL)]
)
async def test_http_status_mapping(prober: Prober, target: CheckTarget, code: int, status: str) -> None:
    name = f"map{code}"
    target.set(name, code)
    result = await prober.run("http", {"HTTP": target.target(name)})
    assert result.status == status
    assert result.output.startswith(f"HTTP GET {target.target(name)}: {code} ")


async def test_redirects_followed_unless_disabled(prober: Prober, target: CheckTarget) -> None:
    url = f"{target.url}/redirect/moved"
    followed = await prober.run("http", {"HTTP": url})
    assert (followed.status, followed.output) == (PASSING, f"HTTP GET {url}: 200 OK Output: ok")
    kept = await prober.run("http", {"HTTP": url, "DisableRedirects": True})
    assert kept.status == CRITICAL and kept.output.startswith(f"HTTP GET {url}: 302 Found")


async def test_timeout_is_critical(prober: Prober, target: CheckTarget) -> None:
    url = f"{target.url}/slow/3"
    result = await prober.run("http", {"HTTP": url, "Timeout": 0.5})
    assert result.status == CRITICAL
    assert result.output.startswith(f'Get "{url}": context deadline exceeded')


async def test_header_overrides_and_output_limit(prober: Prober, target: CheckTarget) -> None:
    result = await prober.run(
        "http", {"HTTP": target.target("hdr"), "Method": "HEAD", "Header": {"User-Agent": ["mine"], "X-A": ["1", "2"]}}
    )
    assert result.status == PASSING
    last = target.hits("hdr")["last"]
    assert last["method"] == "HEAD" and last["headers"]["User-Agent"] == "mine"
    assert truncate_output("x" * 5000) == "x" * 4096 + " ... (captured 4096 of 5000 bytes)"
    assert truncate_output("short") == "short"


async def test_tcp_up_and_refused(tmp_path: Path) -> None:
    with Listener() as listener:
        up = await tcp_probe(listener.address)
        assert (up.status, up.output) == (PASSING, f"TCP connect {listener.address}: Success")
    down = await tcp_probe(listener.address)
    assert (down.status, down.output) == (CRITICAL, f"dial tcp {listener.address}: connect: connection refused")
    bad = await tcp_probe("no-port")
    assert bad.status == CRITICAL


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (no CA trusts it)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_tls_verified_unless_skip_verify(prober: Prober, tmp_path: Path) -> None:
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/"
        verified = await prober.run("http", {"HTTP": url})
        assert verified.status == CRITICAL and "certificate" in verified.output.lower()
        skipped = await prober.run("http", {"HTTP": url, "TLSSkipVerify": True})
        assert (skipped.status, skipped.output) == (PASSING, f"HTTP GET {url}: 200 OK Output: ok")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _serve(answer: bytes) -> tuple[asyncio.Server, str, list[int]]:
    """A loopback server that reads one request, writes ``answer`` (all of it, if the client keeps reading)
    and closes; ``sent`` counts the bytes the client actually took."""
    sent: list[int] = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            for start in range(0, len(answer), 65536):
                writer.write(answer[start : start + 65536])
                await writer.drain()
                sent[0] += len(answer[start : start + 65536])
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/health", sent


async def test_a_huge_chunked_body_is_read_only_as_far_as_the_output_keeps(prober: Prober) -> None:
    chunk = b"y" * 60000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(200)) + b"0\r\n\r\n"  # 12 MB
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    server, url, sent = await _serve(head + body)
    async with server:
        result = await prober.run("http", {"HTTP": url})
    assert result.status == PASSING
    assert result.output == f"HTTP GET {url}: 200 OK Output: " + "y" * 4096, "decoded chunks, cut at 4 KiB"
    assert sent[0] < len(body) // 2, "the probe stopped reading once it had its output"


async def test_a_server_that_closes_without_answering_is_critical(prober: Prober) -> None:
    server, url, _sent = await _serve(b"")
    async with server:
        result = await prober.run("http", {"HTTP": url})
    assert result.status == CRITICAL and result.output.startswith(f'Get "{url}": ')
    assert result.output == f'Get "{url}": EOF'


async def test_an_empty_reason_phrase_reads_as_the_standard_one(prober: Prober) -> None:
    server, url, _sent = await _serve(b"HTTP/1.1 503 \r\nContent-Length: 4\r\n\r\ndown")
    async with server:
        result = await prober.run("http", {"HTTP": url})
    assert (result.status, result.output) == (CRITICAL, f"HTTP GET {url}: 503 Service Unavailable Output: down")
