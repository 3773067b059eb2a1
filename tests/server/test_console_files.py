"""The server serves the console's files beside the X-Ray API, each with a strict CSP.

Also: every vendored library is the pinned file its record names (version, licence and
checksum in ``console/static/vendor/README.md``).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import pytest

from fluoroscope.server.console import STATIC_DIR
from tests.support import ServerProcess, start_server


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names in lower case) and body of GET ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers.items()), exc.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html"),
        ("/console/js/app.js", "javascript"),
        ("/console/vendor/uPlot.esm.js", "javascript"),
        ("/console/console.css", "text/css"),
    ],
)
def test_console_files_are_served_with_a_strict_policy(
    server: ServerProcess, path: str, kind: str
) -> None:
    status, headers, body = _get(server.url + path)
    assert status == 200
    assert kind in headers["content-type"]
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert body


def test_the_page_loads_its_modules_from_this_server_only(server: ServerProcess) -> None:
    _, _, body = _get(server.url + "/")
    page = body.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/console/js/app.js" in sources
    assert all(s.startswith(("/", "#", "data:")) for s in sources), sources
    assert "<script>" not in page and "style=" not in page  # nothing inline


def test_unknown_files_are_not_found_and_the_api_is_unchanged(server: ServerProcess) -> None:
    status, headers, _ = _get(server.url + "/console/js/nothing.js")
    assert status == 404
    status, headers, _ = _get(server.url + "/console/../server/app.py")
    assert status == 404
    status, headers, _ = _get(server.url + "/Traces")  # an operation is POST only
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestException"


def test_vendored_files_match_their_record() -> None:
    record = (STATIC_DIR / "vendor" / "README.md").read_text()
    pinned = dict(re.findall(r"\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|", record))
    shipped = {p.name for p in (STATIC_DIR / "vendor").iterdir() if p.suffix in (".js", ".css")}
    assert set(pinned) == shipped
    for name, digest in pinned.items():
        assert hashlib.sha256((STATIC_DIR / "vendor" / name).read_bytes()).hexdigest() == digest
    assert (STATIC_DIR / "vendor" / "dagre.LICENSE").exists()
    assert (STATIC_DIR / "vendor" / "uPlot.LICENSE").exists()


def test_the_server_says_where_its_console_is(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    output = server.stop()
    assert f"Console: http://127.0.0.1:{server.port}/" in output, output


def test_console_files_are_compressed_for_clients_that_accept_it(server: ServerProcess) -> None:
    request = urllib.request.Request(
        server.url + "/console/vendor/uPlot.esm.js", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-encoding"] == "gzip"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        body = gzip.decompress(response.read())
    assert body == (STATIC_DIR / "vendor" / "uPlot.esm.js").read_bytes()
