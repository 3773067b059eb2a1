"""The outgoing-call instrumentations through the registry: on, off, originals back."""

from __future__ import annotations

import http.client
import subprocess
import sys

import aiohttp
import botocore.client
import httpx
import requests
import urllib3

from fluoroscope.sdk import instrument_all
from fluoroscope.sdk.instrument import uninstrument_all

OUTGOING = ("botocore", "requests", "httpx", "urllib3", "http.client", "aiohttp")


def _targets() -> list[object]:
    return [
        botocore.client.BaseClient._make_api_call,
        requests.Session.send,
        httpx.Client.send,
        httpx.AsyncClient.send,
        urllib3.HTTPConnectionPool.urlopen,
        http.client.HTTPConnection.request,
        http.client.HTTPConnection.getresponse,
        aiohttp.ClientSession._request,
    ]


def test_instrument_all_patches_every_outgoing_library_and_uninstrument_restores() -> None:
    originals = _targets()
    try:
        done = instrument_all()
        assert {name: done[name] for name in OUTGOING} == dict.fromkeys(OUTGOING, True)
        patched = _targets()
        assert all(p is not o for p, o in zip(patched, originals, strict=True))
        assert all(
            getattr(p, "__wrapped__", None) is o for p, o in zip(patched, originals, strict=True)
        )
        instrument_all()
        assert _targets() == patched  # idempotent: not wrapped twice
    finally:
        uninstrument_all()
    assert _targets() == originals


def test_modules_import_no_third_party_library_until_instrumented() -> None:
    code = (
        "import sys\n"
        + "".join(
            f"import fluoroscope.sdk.instrument.{m}\n"
            for m in (
                "outgoing",
                "botocore",
                "requests",
                "httpx",
                "urllib3",
                "http_client",
                "aiohttp",
            )
        )
        + "bad = {'botocore', 'boto3', 'requests', 'httpx', 'urllib3', 'aiohttp'} & set(sys.modules)\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
