"""The sample serverless app, deployed locally: API Gateway → Lambda → DynamoDB, S3, HTTP.

:class:`DemoApp` wires the pieces, all on loopback, each on a free port:

* the AWS emulator (moto: table ``orders``, bucket ``orders-receipts``) and the flaky
  payments API (:mod:`fluoroscope.demo.backends`);
* the Lambda service running the handlers of :mod:`fluoroscope.demo.functions`
  (:mod:`fluoroscope.demo.lambda_runtime`): ``orders-api-createOrder``,
  ``orders-api-getOrder`` and ``orders-api-report`` (reserved concurrency 2, so the
  traffic's bursts of three are throttled);
* ``orders-api-notify``, which ``createOrder`` invokes through boto3's Lambda ``Invoke``
  (Lambda calling Lambda, in one trace);
* what these services write to CloudWatch Logs (:mod:`fluoroscope.demo.cwlogs`), sent to
  the server's Logs API at ``logs_url`` (default ``http://<daemon_address>``, the
  Fluoroscope server's one port; a daemon without it loses the lines, nothing else);
* the API Gateway stage ``orders-api/prod`` (:mod:`fluoroscope.demo.apigateway`):
  ``POST /orders``, ``GET /orders/{id}``, ``GET /report``.

Function instances are recycled after ``idle_timeout`` (15 s) idle and retire after
about ``max_lifetime`` (90 s) — Lambda's minutes and hours, compressed — so cold starts
keep appearing while the demo runs.

The tracing switches come from a SAM template (``template``: default the shipped
``demo/template.yaml``; see :mod:`fluoroscope.demo.template`): API Gateway's
``TracingEnabled`` and each function's ``Tracing`` (``Active`` | ``PassThrough``).

Segments go over UDP to ``daemon_address`` (a Fluoroscope server or an X-Ray daemon).
Nothing here reads the user's AWS configuration or reaches a real AWS endpoint.

``start`` (a few seconds: moto) and ``close`` (bounded) are called from one owner
thread; ``close`` is safe after a partial ``start``.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import IO, Final

from fluoroscope.demo.apigateway import ApiGatewayStage, Route
from fluoroscope.demo.backends import AwsEmulator, PaymentsApi
from fluoroscope.demo.cwlogs import LogShipper
from fluoroscope.demo.lambda_runtime import FunctionConfig, LambdaService
from fluoroscope.demo.template import DEFAULT_TEMPLATE, Template, load_template

__all__ = ["API_NAME", "STAGE", "DemoApp"]

API_NAME: Final = "orders-api"
STAGE: Final = "prod"
TABLE: Final = "orders"
BUCKET: Final = "orders-receipts"
REGION: Final = "us-east-1"
HANDLERS: Final = "fluoroscope.demo.functions"


class DemoApp:
    """The whole sample deployment; see the module docstring."""

    def __init__(
        self,
        daemon_address: str,
        *,
        idle_timeout: float = 15.0,
        max_lifetime: float | None = 90.0,
        log: IO[str] | None = None,
        seed: int | None = None,
        logs_url: str | None = None,
        template: str | Path | None = None,
    ) -> None:
        self.daemon_address = daemon_address
        self.logs_url = logs_url or f"http://{daemon_address}"
        self.logs: LogShipper | None = None
        # raises TemplateError (a ValueError) for a bad template, before anything starts
        self.template: Template = load_template(template or DEFAULT_TEMPLATE)
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._log = log
        self._seed = seed
        self.aws: AwsEmulator | None = None
        self.payments: PaymentsApi | None = None
        self.lambdas: LambdaService | None = None
        self.api: ApiGatewayStage | None = None

    @property
    def url(self) -> str:
        """The API's base URL (``http://127.0.0.1:PORT/prod``); empty before ``start``."""
        return self.api.url if self.api is not None else ""

    def start(self) -> None:
        """Start every piece; raises (after cleaning up) if one cannot start."""
        try:
            self.aws = AwsEmulator(table=TABLE, bucket=BUCKET, region=REGION, log=self._log)
            self.aws.start()
            self.payments = PaymentsApi(seed=self._seed)
            self.payments.start()
            env = {
                "TABLE_NAME": TABLE,
                "BUCKET_NAME": BUCKET,
                "PAYMENTS_URL": self.payments.url,
                "AWS_ENDPOINT_URL": self.aws.url,
                "NOTIFY_FUNCTION": f"{API_NAME}-notify",
            }
            self.logs = LogShipper(self.logs_url)
            functions = [
                replace(f, tracing=self.template.tracing_of(f.name))
                for f in [
                    FunctionConfig(f"{API_NAME}-createOrder", f"{HANDLERS}:create_order"),
                    FunctionConfig(f"{API_NAME}-getOrder", f"{HANDLERS}:get_order", timeout=6.0),
                    FunctionConfig(
                        f"{API_NAME}-report", f"{HANDLERS}:report", reserved_concurrency=2
                    ),
                    FunctionConfig(f"{API_NAME}-notify", f"{HANDLERS}:notify", memory_mb=128),
                ]
            ]
            self.lambdas = LambdaService(
                functions,
                daemon_address=self.daemon_address,
                region=REGION,
                idle_timeout=self.idle_timeout,
                max_lifetime=self.max_lifetime,
                environment=env,
                log=self._log,
                logs=self.logs,
            )
            self.lambdas.wait_standby()
            self.lambdas.start()
            routes = [
                Route("POST", "/orders", f"{API_NAME}-createOrder"),
                Route("GET", "/orders/{id}", f"{API_NAME}-getOrder"),
                Route("GET", "/report", f"{API_NAME}-report"),
            ]
            self.api = ApiGatewayStage(
                API_NAME,
                STAGE,
                routes,
                lambda_url=self.lambdas.url,
                daemon_address=self.daemon_address,
                region=REGION,
                logs=self.logs,
                tracing=self.template.api_tracing,
            )
            self.api.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop everything that was started, front to back; flushes the segments."""
        for piece in (self.api, self.lambdas, self.payments, self.aws, self.logs):
            if piece is not None:
                with contextlib.suppress(Exception):
                    piece.close()
        self.api = self.lambdas = self.payments = self.aws = None
        self.logs = None
