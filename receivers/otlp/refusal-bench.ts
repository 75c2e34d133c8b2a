/**
 * Receiver CPU per request when the pipeline accepts it, when it refuses it
 * after the request was read and scanned (the receiver without refusal
 * memory: how every refusal was answered before), and when it is refused
 * at its headers (the refusal memory in admission.ts). Each case runs the
 * real OtlpReceiver in its own process with a pipeline stand-in that takes
 * the spans or refuses them (queue full), driven by clients in this process
 * sending realistic 512-span requests (~250 KB) back to back.
 *
 *   node dist/receivers/otlp/refusal-bench.js [--calls 2000] [--concurrency 16] [--transport grpc|http]
 *
 * Prints one JSON line per case: receiver CPU µs per request (user +
 * system of the receiver's process) and requests/s; then the ratios. For
 * gRPC also the floor: a bare node:http2 server (64 KiB stream window) that
 * answers every stream Trailers-Only and resets it, with no receiver at all.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { realisticRequest } from '../../collector/pdata/bench.js';
import { RetryableError } from '../../collector/errors.js';
import { systemClock } from '../../collector/component.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { withDefaults } from '../../config/defaults.js';
import { OtlpReceiverSchema } from './config.js';
import { OtlpReceiver } from './receiver.js';
import { ask } from './bench.js';

const PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer) => b;
type Case = 'accepted' | 'refused_after_read' | 'refused_at_headers' | 'bare_http2';

async function serve(kind: Case): Promise<void> {
  if (kind === 'bare_http2') {
    // The floor: node:http2 alone answering every stream Trailers-Only UNAVAILABLE and resetting it.
    const h2 = await import('node:http2');
    const s = h2.createServer({ settings: { initialWindowSize: 65_535 } });
    s.on('stream', (st) => {
      st.on('error', () => undefined);
      st.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' }, { endStream: true });
      st.close(h2.constants.NGHTTP2_NO_ERROR);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    process.on('message', (m) => {
      if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
      if (m === 'exit') process.exit(0);
    });
    const port = (s.address() as { port: number }).port;
    process.send!({ ports: { grpc: port, http: 0 } });
    return;
  }
  const full = new RetryableError('sending queue is full', 500, 'ERR_QUEUE_FULL');
  const next = { consume: async () => (kind === 'accepted' ? undefined : Promise.reject(full)) };
  const admitAll = { check: () => undefined, accepted: () => undefined, refused: () => undefined };
  const window = process.env.BENCH_WINDOW_MIB ? { window_size_mib: Number(process.env.BENCH_WINDOW_MIB) } : {};
  const config = withDefaults(OtlpReceiverSchema, { protocols: { grpc: { endpoint: '127.0.0.1:0', ...window }, http: { endpoint: '127.0.0.1:0' } } });
  const r = new OtlpReceiver({ id: 'otlp', logger: silentLogger(), telemetry: new Telemetry(), clock: systemClock }, config, next, kind === 'refused_at_headers' ? {} : { admission: admitAll });
  await r.start();
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (m === 'exit') process.exit(0);
  });
  process.send!({ ports: { grpc: r.grpcPort, http: r.httpPort } });
}

async function measure(kind: Case, transport: string, calls: number, concurrency: number, body: Buffer): Promise<number> {
  const execArgv = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], { stdio: 'inherit', execArgv });
  const ports = await ask<{ grpc: number; http: number }>(child, '', 'ports');
  const client = new grpc.Client(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure());
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const codes = new Map<string, number>();
  const count = (c: string) => codes.set(c, (codes.get(c) ?? 0) + 1);
  const one = (): Promise<void> =>
    transport === 'grpc'
      ? new Promise((res) => client.makeUnaryRequest(PATH, identity, identity, body, (e: grpc.ServiceError | null) => (count(e ? String(e.code) : 'ok'), res())))
      : new Promise((res) => {
          const req = http.request({ host: '127.0.0.1', port: ports.http, method: 'POST', path: '/v1/traces', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } }, (r) => {
            r.resume();
            r.on('end', () => (count(String(r.statusCode)), res()));
          });
          req.on('error', () => (count('error'), res()));
          req.end(body);
        });
  const run = async (n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < n) await one();
      }),
    );
  };
  await run(Math.min(300, calls)); // warm up (JIT, connections)
  codes.clear();
  const c0 = await ask<NodeJS.CpuUsage>(child, 'cpu', 'cpu');
  const t0 = process.hrtime.bigint();
  await run(calls);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = await ask<NodeJS.CpuUsage>(child, 'cpu', 'cpu');
  client.close();
  agent.destroy();
  child.send('exit');
  const cpuUs = c1.user - c0.user + (c1.system - c0.system);
  const perCall = cpuUs / calls;
  console.log(
    JSON.stringify({ bench: 'receiver_cpu_per_request', case: kind, transport, calls, concurrency, request_bytes: body.length, cpu_us_per_request: Math.round(perCall * 10) / 10, user_us: Math.round((c1.user - c0.user) / calls), system_us: Math.round((c1.system - c0.system) / calls), requests_per_sec: Math.round(calls / secs), answers: Object.fromEntries(codes) }),
  );
  return perCall;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const serveAt = args.indexOf('--serve');
  if (serveAt >= 0) return serve(args[serveAt + 1] as Case);
  const opt = (name: string, d: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : d);
  const calls = Number(opt('--calls', '2000'));
  const concurrency = Number(opt('--concurrency', '16'));
  const body = Buffer.from(realisticRequest(512));
  for (const transport of opt('--transport', 'grpc,http').split(',')) {
    const acc = await measure('accepted', transport, calls, concurrency, body);
    const late = await measure('refused_after_read', transport, calls, concurrency, body);
    const early = await measure('refused_at_headers', transport, calls, concurrency, body);
    const floor = transport === 'grpc' ? await measure('bare_http2', transport, calls, concurrency, body) : undefined;
    console.log(
      JSON.stringify({
        transport,
        refused_after_read_vs_accepted: Math.round((late / acc) * 1000) / 1000,
        refused_at_headers_vs_accepted: Math.round((early / acc) * 1000) / 1000,
        bare_http2_refusal_vs_accepted: floor === undefined ? undefined : Math.round((floor / acc) * 1000) / 1000,
      }),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
