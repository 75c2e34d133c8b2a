import { describe, it, expect, afterEach } from 'vitest';
import zlib from 'node:zlib';
import { OtlpTestBackend } from './backend.js';
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
