"""A rotated serving certificate is picked up by the running server, without a restart."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

from cryptography import x509

from production_policy import certs, metrics
from production_policy.admission import server
from production_policy.processes.clusterview import ClusterView


async def _served_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    return x509.load_der_x509_certificate(der).serial_number


def test_a_rotated_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    ca = certs.make_ca("test-ca")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    files = server.TLSFiles(tmp_path / "tls.crt", tmp_path / "tls.key")
    first = certs.issue_serving(ca, ("127.0.0.1",))
    first.write(files.cert, files.key)
    second = certs.issue_serving(ca, ("127.0.0.1",))

    async def scenario() -> None:
        context = server.ssl_context(files)
        reloader = asyncio.create_task(server.reload_when_rotated(context, files, interval=0.05))
        runner = await server.serve(ClusterView(), "127.0.0.1", 0, context)
        port = runner.addresses[0][1]
        try:
            before = await _served_serial(port, tmp_path / "ca.crt")
            assert before == x509.load_pem_x509_certificate(first.cert_pem).serial_number
            second.write(files.cert, files.key)
            later = os.stat(files.cert).st_mtime + 1  # a rotation always moves the mtime on
            os.utime(files.cert, (later, later))
            expected = x509.load_pem_x509_certificate(second.cert_pem).serial_number
            for _ in range(100):
                if await _served_serial(port, tmp_path / "ca.crt") == expected:
                    break
                await asyncio.sleep(0.05)
            assert await _served_serial(port, tmp_path / "ca.crt") == expected
            assert 364 * 86400 < metrics.CERTIFICATE_EXPIRY._value.get() <= 365 * 86400
        finally:
            reloader.cancel()
            await runner.cleanup()

    asyncio.run(scenario())
