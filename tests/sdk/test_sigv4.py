"""The SDK's SigV4 signer against botocore's: same request, same signature.

botocore's ``SigV4Auth`` (what AWS's own SDK signs with, and what the server checks
with) recomputes the signature of every request :func:`sign` signs - random paths,
header values, bodies, keys, regions and times - from the headers it was given.
"""

from __future__ import annotations

import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.sdk._sigv4 import Credentials, credentials_from_env, region_from_env, sign

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=(\w+)")

_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)


def botocore_signature(headers: dict[str, str], path: str, body: bytes, secret: str) -> str:
    """What botocore computes for the request as sent (the server's check)."""
    match = _AUTH.fullmatch(headers["Authorization"])
    assert match is not None
    scope, signed = match.group(1), match.group(2)
    key_id, day, region, service, _ = scope.split("/")
    assert day == headers["X-Amz-Date"][:8]
    request = AWSRequest("POST", f"http://{headers['Host']}{path}", data=body)
    for name, value in headers.items():
        if name != "Authorization":
            request.headers[name] = value
    request.context["timestamp"] = headers["X-Amz-Date"]
    token = headers.get("X-Amz-Security-Token")
    signer = SigV4Auth(BotoCredentials(key_id, secret, token), service, region)
    names = signed.split(";")
    assert names == sorted(n.lower() for n in headers if n != "Authorization")
    to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    return str(signer.signature(to_sign, request))


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(["/", "/prefix/", "/a b/", "/logs~x/"]),
    target=_text,
    extra=_text,
    body=st.binary(max_size=300),
    secret=_text,
    token=st.none() | _text,
    region=st.sampled_from(["us-east-1", "eu-west-3", "local"]),
    when=st.floats(min_value=1.6e9, max_value=2.0e9),
)
def test_every_signature_is_the_one_botocore_computes(
    path: str, target: str, extra: str, body: bytes, secret: str, token: str | None,
    region: str, when: float,
) -> None:  # fmt: skip
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
               "X-Custom": f"  {extra}  and  more "}  # fmt: skip
    signed = sign(
        "POST", "127.0.0.1:2000", path, headers, body, Credentials("AKIDEXAMPLE", secret, token),
        region=region, service="logs", now=when,
    )  # fmt: skip
    assert headers == {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
                       "X-Custom": f"  {extra}  and  more "}  # fmt: skip
    assert ("X-Amz-Security-Token" in signed) is bool(token)
    match = _AUTH.fullmatch(signed["Authorization"])
    assert match is not None
    assert match.group(1).split("/")[2:] == [region, "logs", "aws4_request"]
    assert match.group(3) == botocore_signature(signed, path, body, secret)
    # a different secret, or a byte of body changed, gives another signature
    assert match.group(3) != botocore_signature(signed, path, body, secret + "x")
    assert match.group(3) != botocore_signature(signed, path, body + b"!", secret)


def test_a_put_log_events_call_is_signed_over_its_scope_and_headers() -> None:
    """The scope names the day, region and service; host, date, type and target are
    signed, the user agent and the body's own headers are not added."""
    signed = sign(
        "POST", "logs.us-east-1.amazonaws.com", "/",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"},
        b"{}", Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region="us-east-1", service="logs", now=1440938160.0,
    )  # fmt: skip
    assert signed["X-Amz-Date"] == "20150830T123600Z"
    assert signed["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/logs/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
    )
    assert signed["Authorization"].rsplit("=", 1)[1] == botocore_signature(
        signed, "/", b"{}", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )


def test_credentials_and_region_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_REGION", "AWS_DEFAULT_REGION"):  # fmt: skip
        mp.delenv(name, raising=False)
    assert credentials_from_env() is None
    assert region_from_env() == "us-east-1"
    mp.setenv("AWS_ACCESS_KEY_ID", "AKID")
    assert credentials_from_env() is None  # a key id alone is no credential
    mp.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    mp.setenv("AWS_SESSION_TOKEN", "tok")
    mp.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert credentials_from_env() == Credentials("AKID", "s3cr3t", "tok")
    assert "s3cr3t" not in repr(credentials_from_env())
    assert region_from_env() == "eu-west-1"
    mp.setenv("AWS_REGION", "ap-south-1")
    assert region_from_env() == "ap-south-1"
