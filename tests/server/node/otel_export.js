// OpenTelemetry JS (the official SDK from npm) exporting a trace over OTLP/HTTP, as an
// app with the default exporter settings would. Run by tests/server/test_otel_js.py
// with NODE_PATH pointing at an install of the SDK and OTEL_EXPORTER_OTLP_ENDPOINT at
// the server.
//
// node otel_export.js SERVICE json|protobuf: one SERVER span with a CLIENT child (an
// HTTP call that failed with 503) and an exception event; prints one JSON line
// {traceId} once the exporter has sent everything (exit status 1 if it could not).

const { trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');

const [service, encoding] = process.argv.slice(2);
const { OTLPTraceExporter } = encoding === 'protobuf'
  ? require('@opentelemetry/exporter-trace-otlp-proto')
  : require('@opentelemetry/exporter-trace-otlp-http');

const exporter = new OTLPTraceExporter();
const provider = new NodeTracerProvider({
  // the SDK's own resource (telemetry.sdk.*) with the app's attributes, as NodeSDK makes it
  resource: defaultResource().merge(
    resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test' })),
  spanProcessors: [new BatchSpanProcessor(exporter)],
});
provider.register();

const tracer = trace.getTracer('otel-js-test');
let traceId;
tracer.startActiveSpan('GET /orders/{id}', {
  kind: SpanKind.SERVER,
  attributes: { 'http.request.method': 'GET', 'url.full': 'http://shop.local/orders/7',
    'http.route': '/orders/{id}', 'http.response.status_code': 502, 'order.id': 'o-7' },
}, (server) => {
  traceId = server.spanContext().traceId;
  tracer.startActiveSpan('GET', {
    kind: SpanKind.CLIENT,
    attributes: { 'http.request.method': 'GET', 'url.full': 'http://payments.local/charge',
      'server.address': 'payments.local', 'http.response.status_code': 503 },
  }, (client) => {
    client.recordException(new Error('payments unavailable'));
    client.setStatus({ code: SpanStatusCode.ERROR });
    client.end();
  });
  server.setStatus({ code: SpanStatusCode.ERROR });
  server.end();
});

provider.forceFlush()
  .then(() => provider.shutdown())
  .then(() => console.log(JSON.stringify({ traceId })))
  .catch((err) => { console.error(err); process.exit(1); });
