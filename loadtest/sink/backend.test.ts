import { describe, it, expect, afterEach } from 'vitest';
import zlib from 'node:zlib';
import { OtlpTestBackend, countSpans } from './backend.js';
import { scanExportRequest } from '../../collector/pdata/spans.js';
import { requestBytes, requestJson } from '../../test/otlp.js';

let backend: OtlpTestBackend | undefined;
afterEach(async () => {
  await backend?.close();
  backend = undefined;
});

const spec = [
  { traceId: 'a'.repeat(32), spanId: '1'.repeat(16) },
  { traceId: 'a'.repeat(32), spanId: '2'.repeat(16) },
];

async function post(url: string, body: Uint8Array | string, headers: Record<string, string>) {
  const res = await fetch(url + '/v1/traces', { method: 'POST', body, headers });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: Buffer.from(await res.arrayBuffer()) };
}

describe('OtlpTestBackend (HTTP side)', () => {
  it('accepts protobuf, gzip and JSON, and records span ids', async () => {
    backend = new OtlpTestBackend({ grpc: false });
    await backend.start();
    const proto = { 'content-type': 'application/x-protobuf' };
    expect((await post(backend.httpEndpoint, requestBytes(spec), proto)).status).toBe(200);
    expect((await post(backend.httpEndpoint, zlib.gzipSync(requestBytes(spec)), { ...proto, 'content-encoding': 'gzip' })).status).toBe(200);
    expect((await post(backend.httpEndpoint, JSON.stringify(requestJson(spec)), { 'content-type': 'application/json' })).status).toBe(200);
    expect(backend.stats).toMatchObject({ requests: 3, acceptedSpans: 6, duplicateSpans: 4 });
    expect(backend.spanKeys.size).toBe(2);
    expect(backend.received.map((r) => [r.encoding, r.compressed])).toEqual([
      ['proto', false],
      ['proto', true],
      ['json', false],
    ]);
  });

  it('switches modes, temporarily for a number of requests, and refuses connections when down+refuse', async () => {
    backend = new OtlpTestBackend({ grpc: false });
    await backend.start();
    const url = backend.httpEndpoint;
    const h = { 'content-type': 'application/x-protobuf' };
    await backend.setMode({ kind: 'throttle', retryAfterMs: 2500 }, { requests: 1 });
    const r1 = await post(url, requestBytes(spec), h);
    expect([r1.status, r1.retryAfter]).toEqual([429, '3']);
    expect((await post(url, requestBytes(spec), h)).status).toBe(200); // back to ok
    await backend.setMode({ kind: 'permanent' });
    expect((await post(url, requestBytes(spec), h)).status).toBe(400);
    await backend.setMode({ kind: 'down' });
    expect((await post(url, requestBytes(spec), h)).status).toBe(503);
    await backend.setMode({ kind: 'down', refuse: true });
    await expect(post(url, requestBytes(spec), h)).rejects.toThrow();
    await backend.setMode({ kind: 'ok' });
    expect(backend.httpEndpoint).toBe(url); // same port after the outage
    expect((await post(url, requestBytes(spec), h)).status).toBe(200);
    expect(backend.stats.failedRequests).toBe(3);
  });
});

describe('countSpans (count-only sink)', () => {
  it('counts what the scanner finds, across resources and scopes, and refuses broken framing', async () => {
    // Two requests back to back are one request with two resource_spans (protobuf merge).
    const many = Buffer.concat([
      requestBytes(spec),
      requestBytes([{ traceId: 'b'.repeat(32), spanId: '3'.repeat(16) }, { traceId: 'b'.repeat(32), spanId: '4'.repeat(16) }], { 'service.name': 'other' }),
    ]);
    expect(countSpans(many)).toBe(scanExportRequest(many).spans.length);
    expect(countSpans(many)).toBe(4);
    expect(countSpans(new Uint8Array(0))).toBe(0);
    expect(() => countSpans(many.subarray(0, many.length - 3))).toThrow();
    backend = new OtlpTestBackend({ grpc: false, countOnly: true });
    await backend.start();
    expect((await post(backend.httpEndpoint, many, { 'content-type': 'application/x-protobuf' })).status).toBe(200);
    expect(backend.stats).toMatchObject({ requests: 1, acceptedSpans: 4 });
    expect(backend.spanKeys.size).toBe(0);
  });
});
