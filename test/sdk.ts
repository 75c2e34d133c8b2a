/** Real OpenTelemetry JS SDK clients for end-to-end tests. */
import { context, trace, SpanKind, SpanStatusCode, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

export type SdkProtocol = 'grpc' | 'http/protobuf' | 'http/json';

export function sdkExporter(protocol: SdkProtocol, grpcPort: number, httpPort: number): SpanExporter {
  switch (protocol) {
    case 'grpc':
      return new GrpcExporter({ url: `http://127.0.0.1:${grpcPort}` });
    case 'http/protobuf':
      return new ProtoExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces` });
    case 'http/json':
      return new JsonExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces` });
  }
}

export interface SdkClient {
  provider: BasicTracerProvider;
  memory: InMemorySpanExporter;
  /** The OTLP protobuf bytes the SDK itself produces for everything it exported so far. */
  expectedBytes(): Uint8Array;
}

export function sdkClient(exporter: SpanExporter, batch = true): SdkClient {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'e2e-checkout', 'deployment.environment.name': 'test', 'service.instance.count': 3 }),
    spanProcessors: [batch ? new BatchSpanProcessor(exporter, { scheduledDelayMillis: 50 }) : new SimpleSpanProcessor(exporter), new SimpleSpanProcessor(memory)],
  });
  return {
    provider,
    memory,
    expectedBytes: () => ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans() as never) as Uint8Array,
  };
}

/** Emits one trace that exercises every field OTLP carries: attributes of every type, events, links, status, trace state. */
export function emitRichTrace(provider: BasicTracerProvider, n: number): string {
  const tracer = provider.getTracer('e2e-scope', '1.2.3');
  const remoteParent: SpanContext = {
    traceId: (0x1000 + n).toString(16).padStart(32, 'c'),
    spanId: (0x2000 + n).toString(16).padStart(16, 'd'),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=abc,ot=th:8'),
  };
  const ctx = trace.setSpanContext(context.active(), remoteParent);
  const t0 = 1_700_000_000_000 + n * 1000;
  const root = tracer.startSpan(
    `GET /orders/${n}`,
    {
      kind: SpanKind.SERVER,
      startTime: t0,
      attributes: {
        'http.request.method': 'GET',
        'http.response.status_code': 500,
        'e2e.double': 3.25,
        'e2e.bool': true,
        'e2e.strings': ['a', 'b'],
        'e2e.ints': [1, 2, 3],
        'e2e.bools': [true, false],
        'e2e.unicode': 'grüße ✓',
      },
      links: [{ context: { traceId: 'e'.repeat(32), spanId: 'f'.repeat(16), traceFlags: 1 }, attributes: { 'link.kind': 'follows' } }],
    },
    ctx,
  );
  root.addEvent('exception', { 'exception.type': 'Error', 'exception.message': 'boom' }, t0 + 5);
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream failed' });
  const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, startTime: t0 + 1, attributes: { 'db.system': 'postgresql' } }, trace.setSpan(ctx, root));
  child.end(t0 + 20);
  root.end(t0 + 30);
  return root.spanContext().traceId;
}
