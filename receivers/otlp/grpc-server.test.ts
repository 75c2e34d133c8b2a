import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { GrpcCode, UnaryGrpcServer, percentEncode, type RefusedBy, type UnaryCall, type UnaryReply } from './grpc-server.js';

const ECHO = '/test.Echo/Call';
const SLOW = '/test.Echo/Slow';
const LIMIT = 64 * 1024;

const calls: UnaryCall[] = [];
const refused: RefusedBy[] = [];
let slowRelease: (() => void) | undefined;
let nextReply: UnaryReply | undefined;

let server: UnaryGrpcServer;
let port: number;

beforeAll(async () => {
  server = new UnaryGrpcServer({
    methods: {
      [ECHO]: (call) => {
        calls.push(call);
        const r = nextReply;
        nextReply = undefined;
        return r ?? { code: GrpcCode.OK, body: call.message };
      },
      [SLOW]: (call) =>
        new Promise<UnaryReply>((resolve) => {
          calls.push(call);
          slowRelease = () => resolve({ code: GrpcCode.OK, body: Buffer.from('late') });
        }),
    },
    maxRecvBytes: LIMIT,
    maxConcurrentStreams: 10,
    onRefused: (_p, why) => refused.push(why),
  });
  port = await server.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await server.close(100);
});

function frame(msg: Uint8Array, flag = 0): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b[0] = flag;
  b.writeUInt32BE(msg.length, 1);
  b.set(msg, 5);
  return b;
}

interface RawResult {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  rstCode: number | undefined;
}

/** One request over a fresh HTTP/2 connection; `writes` go out as separate writes (separate DATA frames). */
async function raw(
  headers: http2.OutgoingHttpHeaders,
  writes: Buffer[],
  opts: { end?: boolean; cancelAfterMs?: number; pauseMs?: number } = {},
): Promise<RawResult> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  try {
    const req = session.request({ ':method': 'POST', ':path': ECHO, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    req.on('error', () => undefined);
    const res: RawResult = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), rstCode: undefined };
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      req.on('response', (h) => {
        res.status = Number(h[':status']);
        res.headers = h;
        if (h['grpc-status'] !== undefined) res.trailers = h; // Trailers-Only
      });
      req.on('trailers', (t) => (res.trailers = t));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('close', () => {
        res.rstCode = req.rstCode;
        resolve();
      });
    });
    for (const w of writes) {
      req.write(w);
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
    if (opts.cancelAfterMs !== undefined) {
      await new Promise((r) => setTimeout(r, opts.cancelAfterMs));
      req.close(http2.constants.NGHTTP2_CANCEL);
    } else if (opts.end !== false) req.end();
    await done;
    res.body = Buffer.concat(chunks);
    return res;
  } finally {
    session.close();
  }
}

function grpcStatus(r: RawResult): number {
  return Number(r.trailers['grpc-status']);
}

describe('UnaryGrpcServer framing', () => {
  it('reassembles a message split across DATA frames (prefix split too) and answers with a framed message', async () => {
    const msg = Buffer.from('x'.repeat(3000) + 'end');
    const f = frame(msg);
    const before = calls.length;
    const r = await raw({}, [f.subarray(0, 2), f.subarray(2, 7), f.subarray(7, 1500), f.subarray(1500)], { pauseMs: 5 });
    expect(r.status).toBe(200);
    expect(grpcStatus(r)).toBe(GrpcCode.OK);
    expect(calls.length).toBe(before + 1);
    expect(calls[calls.length - 1].message.equals(msg)).toBe(true);
    expect(r.body.equals(frame(msg))).toBe(true);
  });

  it('inflates a gzip message (compressed flag + grpc-encoding: gzip)', async () => {
    const msg = Buffer.from('hello '.repeat(100));
    const r = await raw({ 'grpc-encoding': 'gzip' }, [frame(zlib.gzipSync(msg), 1)]);
    expect(grpcStatus(r)).toBe(GrpcCode.OK);
    const c = calls[calls.length - 1];
    expect(c.compressed).toBe(true);
    expect(c.message.equals(msg)).toBe(true);
  });

  it('takes an uncompressed message (flag 0) in a call that declares gzip', async () => {
    const r = await raw({ 'grpc-encoding': 'gzip' }, [frame(Buffer.from('plain'))]);
    expect(grpcStatus(r)).toBe(GrpcCode.OK);
    expect(calls[calls.length - 1].message.toString()).toBe('plain');
  });

  it('answers a compressed flag without grpc-encoding with INTERNAL', async () => {
    const r = await raw({}, [frame(zlib.gzipSync(Buffer.from('x')), 1)]);
    expect(grpcStatus(r)).toBe(GrpcCode.INTERNAL);
    expect(r.trailers['grpc-message']).toContain('no grpc-encoding');
  });

  it('refuses an oversize prefix before the body is sent (RESOURCE_EXHAUSTED, then RST_STREAM NO_ERROR)', async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(LIMIT + 1, 1);
    const n = refused.length;
    // Only the prefix goes out and the request is never ended: the answer must not wait for the body.
    const r = await raw({}, [prefix], { end: false });
    expect(grpcStatus(r)).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    expect(r.trailers['grpc-message']).toContain(`${LIMIT + 1} bytes exceeds the limit of ${LIMIT}`);
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(refused.slice(n)).toEqual(['too_large']);
  });

  it('stops inflating at the limit (gzip bomb) with RESOURCE_EXHAUSTED', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(LIMIT * 4));
    expect(bomb.length).toBeLessThan(LIMIT);
    const r = await raw({ 'grpc-encoding': 'gzip' }, [frame(bomb, 1)]);
    expect(grpcStatus(r)).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    expect(r.trailers['grpc-message']).toContain('decompressed');
  });

  it('answers corrupt gzip, no message, a cut message and a second message with INTERNAL', async () => {
    const bad = await raw({ 'grpc-encoding': 'gzip' }, [frame(Buffer.from('not gzip at all'), 1)]);
    expect(grpcStatus(bad)).toBe(GrpcCode.INTERNAL);
    const none = await raw({}, []);
    expect(grpcStatus(none)).toBe(GrpcCode.INTERNAL);
    expect(none.trailers['grpc-message']).toBe('no request message');
    const cut = await raw({}, [frame(Buffer.from('abcdef')).subarray(0, 8)]);
    expect(grpcStatus(cut)).toBe(GrpcCode.INTERNAL);
    const two = await raw({}, [Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))])]);
    expect(grpcStatus(two)).toBe(GrpcCode.INTERNAL);
    expect(two.trailers['grpc-message']).toContain('one request message');
  });

  it('answers an unknown method with UNIMPLEMENTED and an unknown encoding with UNIMPLEMENTED + grpc-accept-encoding', async () => {
    const r = await raw({ ':path': '/test.Echo/Nope' }, [frame(Buffer.from('x'))]);
    expect(grpcStatus(r)).toBe(GrpcCode.UNIMPLEMENTED);
    expect(r.trailers['grpc-message']).toBe('unknown method /test.Echo/Nope');
    const e = await raw({ 'grpc-encoding': 'snappy' }, [frame(Buffer.from('x'), 1)]);
    expect(grpcStatus(e)).toBe(GrpcCode.UNIMPLEMENTED);
    expect(e.headers['grpc-accept-encoding']).toBe('identity,gzip');
  });

  it('answers a non-gRPC content type with HTTP 415 and a non-POST method with 405', async () => {
    const r = await raw({ 'content-type': 'application/json' }, [Buffer.from('{}')]);
    expect(r.status).toBe(415);
    expect(r.body.toString()).toContain('application/grpc');
    const g = await raw({ ':method': 'PUT' }, [frame(Buffer.from('x'))]);
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe('POST');
  });

  it('accepts application/grpc+proto', async () => {
    const r = await raw({ 'content-type': 'application/grpc+proto' }, [frame(Buffer.from('p'))]);
    expect(grpcStatus(r)).toBe(GrpcCode.OK);
  });

  it('drops a call the client cancels mid-message, and keeps serving', async () => {
    const before = calls.length;
    const f = frame(Buffer.alloc(10_000, 1));
    const r = await raw({}, [f.subarray(0, 4000)], { cancelAfterMs: 20 });
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    await new Promise((res) => setTimeout(res, 20));
    expect(calls.length).toBe(before);
    const ok = await raw({}, [frame(Buffer.from('next'))]);
    expect(grpcStatus(ok)).toBe(GrpcCode.OK);
  });

  it('percent-encodes grpc-message', () => {
    expect(percentEncode('plain text: ok')).toBe('plain text: ok');
    expect(percentEncode('50% done\nnext ✓')).toBe('50%25 done%0Anext %E2%9C%93');
  });
});

describe('UnaryGrpcServer with a grpc-js client', () => {
  let client: grpc.Client;
  beforeAll(() => {
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 /* gzip */ });
  });
  afterAll(() => client.close());

  function call(path: string, body: Buffer, c = client): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> {
    const id = (b: Buffer) => b;
    return new Promise((resolve) => c.makeUnaryRequest(path, id, id, body, (err: grpc.ServiceError | null, res?: Buffer) => resolve({ err, res })));
  }

  it('round-trips a gzip-compressed call', async () => {
    const body = Buffer.from('payload '.repeat(500));
    const { err, res } = await call(ECHO, body);
    expect(err).toBeNull();
    expect(res?.equals(body)).toBe(true);
    expect(calls[calls.length - 1].compressed).toBe(true);
  });

  it('carries the status code, a non-ASCII message and grpc-status-details-bin to the client', async () => {
    const details = Buffer.from([8, 14, 18, 3, 0x61, 0x62, 0x63, 0xff]);
    nextReply = { code: GrpcCode.UNAVAILABLE, message: 'queue full: 100% ✗', details };
    const { err } = await call(ECHO, Buffer.from('x'));
    expect(err?.code).toBe(GrpcCode.UNAVAILABLE);
    expect(err?.details).toBe('queue full: 100% ✗');
    const got = err?.metadata.get('grpc-status-details-bin')[0] as Buffer;
    expect(Buffer.from(got).equals(details)).toBe(true);
  });

  it('answers an unknown method with UNIMPLEMENTED', async () => {
    const { err } = await call('/test.Echo/Nope', Buffer.from('x'));
    expect(err?.code).toBe(GrpcCode.UNIMPLEMENTED);
  });

  it('sends RESOURCE_EXHAUSTED for a message over the limit', async () => {
    const plain = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const { err } = await call(ECHO, Buffer.alloc(LIMIT + 10, 7), plain);
    plain.close();
    expect(err?.code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
  });

  it('lets a call in flight finish on close() and refuses new connections after', async () => {
    const own = new UnaryGrpcServer({ methods: { [SLOW]: server['opts'].methods[SLOW] }, maxRecvBytes: LIMIT, maxConcurrentStreams: 10 });
    const p = await own.listen('127.0.0.1', 0);
    const c = new grpc.Client(`127.0.0.1:${p}`, grpc.credentials.createInsecure());
    slowRelease = undefined;
    const pending = call(SLOW, Buffer.from('in flight'), c);
    while (slowRelease === undefined) await new Promise((r) => setTimeout(r, 5));
    const closed = own.close(5000);
    await new Promise((r) => setTimeout(r, 50));
    (slowRelease as () => void)();
    const { err, res } = await pending;
    expect(err).toBeNull();
    expect(res?.toString()).toBe('late');
    await closed;
    const after = await call(SLOW, Buffer.from('x'), c);
    expect(after.err?.code).toBe(GrpcCode.UNAVAILABLE);
    c.close();
  });
});
