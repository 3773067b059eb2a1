"""``python -m fluoroscope.demo._moto HOST TABLE BUCKET REGION``: the app's AWS, in a process.

Runs moto's server on ``HOST`` (a free port), creates the DynamoDB table and S3 bucket
(seeded with a few orders), then writes one JSON line to stdout: ``{"ready": true,
"port": N}`` or ``{"error": "..."}``. It serves until its stdin closes — when the demo
exits, even if killed — so it never outlives the demo.

Started by :class:`fluoroscope.demo.backends.AwsEmulator` with
:func:`~fluoroscope.demo._env.app_environ` (dummy credentials, no AWS profile or proxy of
the user's) and in its own session (Ctrl-C in the terminal reaches only the demo).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any


def provision(url: str, table: str, bucket: str, region: str) -> None:
    """Create ``table`` and ``bucket`` on the emulator at ``url``, with five seed orders."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, region_name=region, config=config)

    dynamodb, s3 = client("dynamodb"), client("s3")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=bucket)
    for n in range(1, 6):
        order_id = f"seed-{n:04d}"
        amount = round(9.99 * n, 2)
        dynamodb.put_item(
            TableName=table,
            Item={
                "orderId": {"S": order_id},
                "customer": {"S": "seed"},
                "amount": {"N": str(amount)},
                "status": {"S": "PAID"},
            },
        )
        s3.put_object(
            Bucket=bucket,
            Key=f"receipts/{order_id}.json",
            Body=json.dumps({"orderId": order_id, "amount": amount}).encode(),
        )


def main(argv: list[str]) -> int:
    """Serve until stdin closes; see the module docstring. Returns the exit status."""
    host, table, bucket, region = argv
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # moto's and werkzeug's prints go to stderr, not the protocol
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
        server.start()
        _, port = server.get_host_and_port()
        provision(f"http://{host}:{port}", table, bucket, region)
    except Exception as exc:
        out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": True, "port": port}) + "\n")
    out.flush()
    sys.stdin.read()  # returns at end of file: the demo is gone or closed the pipe
    os._exit(0)  # moto's threads are daemons of no value now; exit at once


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
