"""The environment of the app's own processes: the user's, minus AWS settings, plus dummies.

Every process of the sample app (the AWS emulator, the Lambda sandboxes) starts from
:func:`app_environ`: the parent's variables without any ``AWS_*`` (profiles, config
and credentials files, endpoints, X-Ray settings), Lambda, Fluoroscope or HTTP proxy
variable, and with dummy credentials, a region and no config files — so the user's AWS
setup is never read, every call stays on loopback, and nothing can be sent to a real
AWS endpoint by accident. Pure; never raises.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["DUMMY_CREDENTIALS", "app_environ"]

_PROXY_VARIABLES = frozenset(("http_proxy", "https_proxy", "all_proxy", "no_proxy"))

DUMMY_CREDENTIALS: dict[str, str] = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


def app_environ(region: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) cleaned of AWS/Lambda/Fluoroscope settings."""
    source = os.environ if base is None else base
    env = {
        k: v
        for k, v in source.items()
        if not k.startswith(("AWS_", "_X_AMZN", "LAMBDA_", "FLUOROSCOPE_"))
        and k != "_HANDLER"
        and k.lower() not in _PROXY_VARIABLES
    }
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": DUMMY_CREDENTIALS["aws_session_token"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env
