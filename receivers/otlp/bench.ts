/**
 * Server-side CPU per unary call: @grpc/grpc-js's server vs this receiver's
 * `node:http2` server (grpc-server.ts), each in its own process with a
 * handler that takes the bytes and answers an empty response, driven by one
 * grpc-js client (the same for both) sending realistic 100-span requests.
 *
 *   node dist/receivers/otlp/bench.js [--calls 3000] [--concurrency 1]
 *
 * Prints one JSON line per server: CPU µs per call (user + system of the
 * server process, from process.cpuUsage) and calls/s.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { realisticRequest } from '../../collector/pdata/bench.js';
import { GrpcCode, UnaryGrpcServer } from './grpc-server.js';

const PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer) => b;

/** Child: serve with `impl`, answer 'cpu' messages with process.cpuUsage(). */
async function serve(impl: string): Promise<void> {
  let port: number;
  if (impl === 'grpc-js') {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
    const def = { Export: { path: PATH, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } };
    server.addService(def as grpc.ServiceDefinition, { Export: (_c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.alloc(0)) });
    port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  } else {
    const server = new UnaryGrpcServer({ methods: { [PATH]: () => ({ code: GrpcCode.OK }) }, maxRecvBytes: 4 * 1024 * 1024, maxConcurrentStreams: 100 });
    port = await server.listen('127.0.0.1', 0);
  }
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (m === 'exit') process.exit(0);
  });
  process.send!({ port });
}

/** Sends `msg` to a forked child (none when empty) and resolves with `key` of its first answer carrying it. */
export function ask<T>(child: ReturnType<typeof fork>, msg: string, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (key in m) {
        child.off('message', on);
        resolve(m[key] as T);
      }
    };
    child.on('message', on);
    if (msg) child.send(msg);
  });
}

async function measure(impl: string, calls: number, concurrency: number, body: Buffer): Promise<void> {
  // BENCH_SERVER_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers.
  const execArgv = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const child = fork(fileURLToPath(import.meta.url), ['--serve', impl], { stdio: 'inherit', execArgv });
  const port = await ask<number>(child, '', 'port');
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const one = () => new Promise<void>((res, rej) => client.makeUnaryRequest(PATH, identity, identity, body, (e: grpc.ServiceError | null) => (e ? rej(e) : res())));
  const run = async (n: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next++ < n) await one();
    }));
  };
  await run(Math.min(500, calls)); // warm up (JIT, connection)
  const c0 = await ask<NodeJS.CpuUsage>(child, 'cpu', 'cpu');
  const t0 = process.hrtime.bigint();
  await run(calls);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = await ask<NodeJS.CpuUsage>(child, 'cpu', 'cpu');
  client.close();
  child.send('exit');
  const cpuUs = c1.user - c0.user + (c1.system - c0.system);
  console.log(JSON.stringify({ bench: 'grpc_server_per_call', server: impl, calls, concurrency, request_bytes: body.length, cpu_us_per_call: Math.round((cpuUs / calls) * 10) / 10, calls_per_sec: Math.round(calls / secs) }));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const serveAt = args.indexOf('--serve');
  if (serveAt >= 0) return serve(args[serveAt + 1]);
  const opt = (name: string, d: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : d);
  const calls = opt('--calls', 3000);
  const concurrency = opt('--concurrency', 1);
  const body = Buffer.from(realisticRequest(100));
  for (const impl of ['grpc-js', 'http2']) await measure(impl, calls, concurrency, body);
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
