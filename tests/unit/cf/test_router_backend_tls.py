"""Router -> Traffic Controller over TLS with the SAN check, on a loopback TLS server (trustme):
the route's SAN matches -> connected; another name -> 503; another CA -> 526 (gorouter's codes)."""

from __future__ import annotations

import asyncio
import ssl

import trustme

from harness.cf.router import Router, backend_tls_failure

SAN = "doppler.sys.example.com"


def dial(server_ca: trustme.CA, server_name: str, trusted: trustme.CA) -> tuple[int, str] | None:
    async def go() -> tuple[int, str] | None:
        cert = server_ca.issue_cert(server_name)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        router = Router("r", {SAN: f"127.0.0.1:{port}"}, False, {SAN: SAN}, trusted.cert_pem.bytes().decode())
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=router.backend_context,
                                                      server_hostname=router.backend_tls[SAN])
            writer.close()
            return None
        except ssl.SSLError as exc:
            return backend_tls_failure(exc)
        finally:
            server.close()

    return asyncio.run(go())


def test_the_registered_san_connects() -> None:
    ca = trustme.CA()
    assert dial(ca, SAN, ca) is None


def test_a_certificate_for_another_name_is_503_hostname_mismatch() -> None:
    ca = trustme.CA()
    status, error = dial(ca, "tc.sys.example.com", ca)  # type: ignore[misc]
    assert status == 503 and error.startswith("endpoint_failure (backend hostname mismatch")


def test_an_untrusted_certificate_is_526() -> None:
    status, error = dial(trustme.CA(), SAN, trustme.CA())  # type: ignore[misc]
    assert status == 526 and "untrusted" in error
