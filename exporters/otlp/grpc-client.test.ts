import { afterEach, describe, expect, it } from 'vitest';
import http2 from 'node:http2';
import net from 'node:net';
import { UnaryGrpcClient } from './grpc-client.js';
import { GrpcCode } from '../../receivers/otlp/grpc-server.js';

type Answer = (stream: http2.ServerHttp2Stream, body: Buffer) => void;

/** A raw HTTP/2 server that answers each call with `answer`, to reach the client's fallbacks. */
async function server(answer: Answer): Promise<{ address: string; srv: http2.Http2Server; sessions: Set<http2.ServerHttp2Session> }> {
  const srv = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => sessions.add(s));
  srv.on('stream', (stream) => {
    stream.on('error', () => undefined); // a reset the test asked for
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => answer(stream, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${(srv.address() as net.AddressInfo).port}`, srv, sessions };
}

function framed(msg: Buffer): Buffer {
  const p = Buffer.alloc(5);
  p.writeUInt32BE(msg.length, 1);
  return Buffer.concat([p, msg]);
}

const open: Array<() => void> = [];
afterEach(() => {
  for (const c of open.splice(0)) c();
});

async function setup(answer: Answer, maxRecvBytes = 1024) {
  const s = await server(answer);
  const client = new UnaryGrpcClient({ address: s.address, tls: undefined, userAgent: 'test', maxRecvBytes });
  open.push(() => {
    client.close();
    for (const x of s.sessions) x.destroy();
    s.srv.close();
  });
  return { ...s, client };
}

const call = (c: UnaryGrpcClient, msg = Buffer.from('hello'), signal = new AbortController().signal) => c.call('/svc/M', msg, {}, false, signal);

describe('UnaryGrpcClient', () => {
  it('sends the message under a 5-byte prefix and reads status, message and body from the answer', async () => {
    let got: Buffer | undefined;
    const { client } = await setup((stream, body) => {
      got = body;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all%20good' }));
      stream.end(framed(Buffer.from('answer')));
    });
    const r = await call(client);
    expect(got).toEqual(framed(Buffer.from('hello')));
    expect(r.code).toBe(GrpcCode.OK);
    expect(r.message).toBe('all good');
    expect(r.body?.toString()).toBe('answer');
  });

  it('takes the status from a Trailers-Only answer, with its details', async () => {
    const { client } = await setup((stream) => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(GrpcCode.RESOURCE_EXHAUSTED), 'grpc-message': 'slow%20down', 'grpc-status-details-bin': Buffer.from([1, 2, 3]).toString('base64') },
        { endStream: true },
      );
    });
    const r = await call(client);
    expect(r).toMatchObject({ code: GrpcCode.RESOURCE_EXHAUSTED, message: 'slow down' });
    expect([...(r.details ?? [])]).toEqual([1, 2, 3]);
  });

  it.each([
    [503, GrpcCode.UNAVAILABLE],
    [404, GrpcCode.UNIMPLEMENTED],
    [401, GrpcCode.UNAUTHENTICATED],
    [500, GrpcCode.UNKNOWN],
  ])('maps HTTP %i without a grpc-status to code %i', async (status, code) => {
    const { client } = await setup((stream) => stream.respond({ ':status': status }, { endStream: true }));
    const r = await call(client);
    expect(r.code).toBe(code);
    expect(r.message).toContain(String(status));
  });

  it.each([
    [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, GrpcCode.RESOURCE_EXHAUSTED],
    [http2.constants.NGHTTP2_REFUSED_STREAM, GrpcCode.UNAVAILABLE],
    [http2.constants.NGHTTP2_CANCEL, GrpcCode.CANCELLED],
  ])('maps RST_STREAM %i to code %i', async (rst, code) => {
    const { client } = await setup((stream) => stream.close(rst));
    expect((await call(client)).code).toBe(code);
  });

  it('refuses an answer larger than maxRecvBytes', async () => {
    const { client } = await setup((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(framed(Buffer.alloc(4096)));
    }, 1024);
    expect((await call(client)).code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
  });

  it('ends an aborted call CANCELLED', async () => {
    const { client } = await setup(() => undefined); // never answers
    const ac = new AbortController();
    const p = call(client, Buffer.from('x'), ac.signal);
    setTimeout(() => ac.abort(), 20);
    expect((await p).code).toBe(GrpcCode.CANCELLED);
  });

  it('is UNAVAILABLE when nothing listens, and opens a new connection after the server goes away', async () => {
    const ok: Answer = (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
    const { client, sessions } = await setup(ok);
    expect((await call(client)).code).toBe(GrpcCode.OK);
    for (const s of sessions) s.goaway();
    await new Promise((r) => setTimeout(r, 50));
    expect((await call(client)).code).toBe(GrpcCode.OK);
    expect(sessions.size).toBe(2);

    const dead = new UnaryGrpcClient({ address: '127.0.0.1:1', tls: undefined, userAgent: 'test', maxRecvBytes: 1024 });
    open.push(() => dead.close());
    const r = await call(dead);
    expect(r.code).toBe(GrpcCode.UNAVAILABLE);
    expect(r.message).toContain('ECONNREFUSED');
  });
});
