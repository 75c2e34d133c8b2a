/**
 * Limits on connections, with small timeouts: idle HTTP/2 connections and
 * half-sent HTTP/1 requests are closed on time while a normal client is
 * served; connections beyond max_connections are closed; each is counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { OtlpReceiver } from './receiver.js';
import { OtlpReceiverSchema } from './config.js';
import { withDefaults } from '../../config/defaults.js';
import { SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock } from '../../collector/component.js';
import { requestBytes } from '../../test/otlp.js';
import pino from 'pino';

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const BODY = Buffer.from(requestBytes([{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' }]));
const telemetry = new Telemetry();
const sink = new SinkConsumer();
let receiver: OtlpReceiver;

beforeAll(async () => {
  const config = withDefaults(OtlpReceiverSchema, {
    protocols: {
      grpc: { endpoint: '127.0.0.1:0', idle_timeout: '200ms', read_timeout: '300ms', max_connections: 40 },
      http: { endpoint: '127.0.0.1:0', idle_timeout: '200ms', read_header_timeout: '200ms', read_timeout: '400ms', max_connections: 40 },
    },
  });
  receiver = new OtlpReceiver({ id: 'otlp', logger: silentLogger(), telemetry, clock: systemClock }, config, sink);
  await receiver.start();
});

afterAll(async () => {
  await receiver.shutdown();
});

const closed = (transport: string, reason: string) => telemetry.total('sidecar_receiver_connections_closed_total', { transport, reason });

/** Resolves with the time (ms from now) at which the socket closed. */
function closedAfter(s: net.Socket | http2.ClientHttp2Session): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => s.once('close', () => resolve(Date.now() - t0)));
}

/** A well-behaved HTTP client sending every 50 ms on one keep-alive connection until `stop`. */
function normalHttpClient(): { stop(): Promise<number[]> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const statuses: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      statuses.push(
        await new Promise<number>((resolve) => {
          const req = http.request({ host: '127.0.0.1', port: receiver.httpPort, method: 'POST', path: '/v1/traces', agent, headers: { 'content-type': 'application/x-protobuf' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve(-1));
          req.end(BODY);
        }),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      return statuses;
    },
  };
}

describe('connection limits', () => {
  it('closes idle HTTP/2 connections after idle_timeout (GOAWAY) while a busy gRPC client is served', async () => {
    const idle = Array.from({ length: 20 }, () => http2.connect(`http://127.0.0.1:${receiver.grpcPort}`));
    for (const s of idle) s.on('error', () => undefined);
    const goaways = idle.map((s) => new Promise<void>((resolve) => s.once('goaway', () => resolve())));
    const closes = idle.map(closedAfter);
    const c = new grpc.Client(`127.0.0.1:${receiver.grpcPort}`, grpc.credentials.createInsecure());
    const errors: unknown[] = [];
    let calls = 0;
    const id = (b: Buffer) => b;
    let idleDone = false;
    const busy = (async () => {
      const deadline = Date.now() + 8000; // a loaded machine may be slow; normally ~0.5 s
      while ((!idleDone || calls < 6) && Date.now() < deadline) {
        const err = await new Promise((resolve) => c.makeUnaryRequest(EXPORT, id, id, BODY, (e) => resolve(e)));
        if (err) errors.push(err);
        calls++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const times = await Promise.all(closes);
    await Promise.all(goaways);
    idleDone = true;
    await busy;
    c.close();
    expect(errors).toEqual([]);
    expect(calls).toBeGreaterThan(5);
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(150);
      expect(t).toBeLessThan(4000); // 200 ms idle plus the sweep; generous for a loaded CI machine
    }
    expect(await closed('grpc', 'idle')).toBeGreaterThanOrEqual(20);
  });

  it('resets a gRPC call whose message does not arrive within read_timeout', async () => {
    const s = http2.connect(`http://127.0.0.1:${receiver.grpcPort}`);
    s.on('error', () => undefined);
    const stream = s.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => undefined);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(1000, 1);
    stream.write(Buffer.concat([prefix, Buffer.alloc(10)])); // 10 of 1000 bytes, then nothing
    const code = await new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
    expect(code).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(await closed('grpc', 'read_timeout')).toBe(1);
    s.close();
  });

  it('closes half-sent HTTP/1 requests (headers or body) on time while a normal client is served', async () => {
    const normal = normalHttpClient();
    const socks: net.Socket[] = [];
    const open = (data: string): Promise<number> => {
      const s = net.connect(receiver.httpPort, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      socks.push(s);
      s.write(data);
      return closedAfter(s);
    };
    const halfHeaders = Array.from({ length: 10 }, () => open('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: app'));
    const halfBodies = Array.from({ length: 10 }, () => open('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789'));
    const headerTimes = await Promise.all(halfHeaders);
    const bodyTimes = await Promise.all(halfBodies);
    const statuses = await normal.stop();
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.every((s) => s === 200)).toBe(true);
    for (const t of headerTimes) expect(t).toBeLessThan(2000);
    for (const t of bodyTimes) {
      expect(t).toBeGreaterThanOrEqual(300);
      expect(t).toBeLessThan(2500);
    }
    expect(await closed('http', 'header_timeout')).toBeGreaterThanOrEqual(10);
    expect(await closed('http', 'read_timeout')).toBeGreaterThanOrEqual(10);
  });

  it('closes an HTTP/1 keep-alive connection idle for idle_timeout', async () => {
    const before = await closed('http', 'idle');
    // A raw client (node's agent closes sockets itself before the server's Keep-Alive hint runs out).
    const s = net.connect(receiver.httpPort, '127.0.0.1');
    s.on('error', () => undefined);
    let answer = '';
    const answered = new Promise<number>((resolve) =>
      s.on('data', (d) => {
        answer += d.toString('latin1');
        if (answer.includes('\r\n\r\n')) resolve(Date.now());
      }),
    );
    s.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${BODY.length}\r\n\r\n`);
    s.write(BODY);
    const closedAt = new Promise<number>((resolve) => s.once('close', () => resolve(Date.now())));
    const t0 = await answered;
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    const idleFor = (await closedAt) - t0;
    expect(idleFor).toBeGreaterThanOrEqual(150);
    expect(idleFor).toBeLessThan(2000);
    expect(await closed('http', 'idle')).toBe(before + 1);
  });

  it('closes connections beyond max_connections as they arrive, and counts them', async () => {
    const socks = Array.from({ length: 40 }, () => net.connect(receiver.grpcPort, '127.0.0.1'));
    await Promise.all(socks.map((s) => new Promise((r) => s.once('connect', r))));
    await new Promise((r) => setTimeout(r, 50));
    const extra = net.connect(receiver.grpcPort, '127.0.0.1');
    extra.on('error', () => undefined);
    const t = await closedAfter(extra);
    expect(t).toBeLessThan(1000);
    expect(await closed('grpc', 'max_connections')).toBe(1);
    for (const s of socks) s.destroy();
  });
});

describe('binding beyond loopback', () => {
  it('warns at start when a receiver listens beyond localhost without TLS, and not on loopback', async () => {
    const lines: Array<{ level: number; msg: string; transport?: string }> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const start = async (host: string) => {
      const config = withDefaults(OtlpReceiverSchema, { protocols: { grpc: { endpoint: `${host}:0` }, http: { endpoint: `${host}:0` } } });
      const r = new OtlpReceiver({ id: 'otlp', logger, telemetry: new Telemetry(), clock: systemClock }, config, sink);
      await r.start();
      await r.shutdown();
    };
    await start('127.0.0.1');
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
    await start('0.0.0.0');
    const warned = lines.filter((l) => l.level === 40 && l.msg.includes('beyond localhost without TLS'));
    expect(warned.map((l) => l.transport).sort()).toEqual(['grpc', 'http']);
  });
});
