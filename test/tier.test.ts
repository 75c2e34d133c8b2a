/**
 * The sampling-tier topology, process by process: three sidecar processes
 * (each sees a third of every trace's spans) route with the `loadbalancing`
 * exporter to two tier processes that tail-sample (keep traces with an error
 * span) and export to a sink. Every kept trace must arrive complete (only
 * possible if all its spans met on one tier instance) and no trace without an
 * error may arrive. Then the same while one tier instance is restarted
 * (SIGTERM: it writes its pending traces to its disk buffer; started again on
 * the same directory): the senders' queued spans and the restored traces meet
 * again because restored traces wait `restore_grace` before they are decided.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChild, freePort, waitReady, serviceYaml, receiverYaml, type Child } from './child.js';
import { requestBytes, type SpanSpec } from './otlp.js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tier-'));
const children: Child[] = [];
const sinkTraces = new Map<string, Set<string>>();
let sink: OtlpTestBackend | undefined;
afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  await sink?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function tierConfig(grpcPort: number, metricsPort: number, sinkEndpoint: string, dir: string): string {
  return `
${receiverYaml('grpc', grpcPort)}processors:
  tail_sampling:
    decision_wait: 2s
    tick_interval: 100ms
    decision_cache: { sampled_cache_size: 10000, non_sampled_cache_size: 10000 }
    buffer:
      disk: { directory: ${dir}, restore_grace: 2s }
    policies:
      - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
  batch: { timeout: 50ms }
exporters:
  otlp:
    endpoint: ${sinkEndpoint}
    tls: { insecure: true }
    compression: none
${serviceYaml(metricsPort, ['tail_sampling', 'batch'], ['otlp'], ['shutdown_timeout: 5s', 'shutdown_delay: 0s   # a tier\'s senders retry: no need to accept after SIGTERM'])}`;
}

function sidecarConfig(httpPort: number, metricsPort: number, tiers: string[]): string {
  return `
${receiverYaml('http', httpPort)}processors:
  batch: { timeout: 50ms }
exporters:
  loadbalancing:
    routing_key: traceID
    protocol:
      otlp:
        tls: { insecure: true }
        compression: none
        timeout: 1s
        retry_on_failure: { initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0s }
        circuit_breaker: { failure_threshold: 1000 }
    resolver:
      static: { hostnames: [${tiers.join(', ')}] }
    reroute_after: 0s
${serviceYaml(metricsPort, ['batch'], ['loadbalancing'])}`;
}

interface Proc {
  child: Child;
  metricsPort: number;
  port: number;
  configFile: string;
}

async function startProc(name: string, port: number, yaml: (metricsPort: number) => string): Promise<Proc> {
  const metricsPort = await freePort();
  const configFile = path.join(tmp, `${name}.yaml`);
  fs.writeFileSync(configFile, yaml(metricsPort));
  const child = startChild(['--config', configFile]);
  children.push(child);
  await waitReady(metricsPort, child);
  return { child, metricsPort, port, configFile };
}

async function stop(p: Proc): Promise<void> {
  p.child.proc.kill('SIGTERM');
  expect(await p.child.exited).toBe(0);
}

/** The same config and directories again. */
async function startAgain(p: Proc): Promise<Proc> {
  const child = startChild(['--config', p.configFile]);
  children.push(child);
  await waitReady(p.metricsPort, child);
  return { ...p, child };
}

async function metric(p: Proc, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

let seq = 0;
const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

/**
 * `n` traces of 6 spans; every third has an error span (the fifth). Span k
 * goes through sidecar k % 3 in phase floor(k / 2): each trace's spans are
 * spread over the three sidecars and the three phases.
 */
function makeTraces(n: number): { phases: SpanSpec[][][]; kept: Map<string, number>; dropped: Set<string> } {
  const phases: SpanSpec[][][] = [0, 1, 2].map(() => [[], [], []]);
  const kept = new Map<string, number>();
  const dropped = new Set<string>();
  for (let t = 0; t < n; t++) {
    const id = ++seq;
    const traceId = hex(Math.imul(id, 2654435761) >>> 0, 8) + hex(id, 24);
    const error = id % 3 === 0;
    if (error) kept.set(traceId, 6);
    else dropped.add(traceId);
    for (let k = 0; k < 6; k++) {
      const spanId = hex(id, 12) + hex(k + 1, 4);
      phases[Math.floor(k / 2)][k % 3].push({
        traceId,
        spanId,
        parentSpanId: k === 0 ? undefined : hex(id, 12) + '0001',
        name: `op-${k}`,
        status: error && k === 4 ? 2 : undefined,
      });
    }
  }
  return { phases, kept, dropped };
}

async function post(p: Proc, spans: SpanSpec[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(`http://127.0.0.1:${p.port}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: requestBytes(spans),
    });
    if (r.status === 200) return;
    if (attempt > 50) throw new Error(`sidecar answered ${r.status}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

function check(kept: Map<string, number>, dropped: Set<string>) {
  const incomplete: string[] = [];
  for (const [id, n] of kept) if ((sinkTraces.get(id)?.size ?? 0) !== n) incomplete.push(`${id}:${sinkTraces.get(id)?.size ?? 0}`);
  const leaked = [...dropped].filter((id) => sinkTraces.has(id));
  return { incomplete, leaked };
}

describe('sampling tier: 3 sidecars -> loadbalancing -> 2 tail-sampling tiers -> sink', () => {
  it('every kept trace arrives complete, also through a restart of a tier instance', async () => {
    sink = new OtlpTestBackend({
      http: false,
      onRequest: (req, spans) => {
        if (req.outcome !== 'accepted') return;
        for (const s of spans ?? []) {
          let set = sinkTraces.get(s.traceId);
          if (!set) sinkTraces.set(s.traceId, (set = new Set()));
          set.add(Buffer.from(s.buf.subarray(s.spanIdOff, s.spanIdOff + 8)).toString('hex'));
        }
      },
    });
    await sink.start();
    const tierPorts = [await freePort(), await freePort()];
    const tiers = await Promise.all(
      tierPorts.map((port, i) => {
        const dir = path.join(tmp, `tier-${i}`);
        return startProc(`tier-${i}`, port, (m) => tierConfig(port, m, sink!.grpcEndpoint, dir));
      }),
    );
    const sidecarPorts = [await freePort(), await freePort(), await freePort()];
    const sidecars = await Promise.all(
      sidecarPorts.map((port, i) => startProc(`sidecar-${i}`, port, (m) => sidecarConfig(port, m, tierPorts.map((p) => `127.0.0.1:${p}`)))),
    );

    // Phase 1: steady.
    const a = makeTraces(60);
    for (const phase of a.phases) await Promise.all(sidecars.map((s, i) => post(s, phase[i])));
    let p1 = check(a.kept, a.dropped);
    for (const until = Date.now() + 6000; p1.incomplete.length > 0 && Date.now() < until; p1 = check(a.kept, a.dropped)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(p1.incomplete).toEqual([]);
    expect(p1.leaked).toEqual([]);
    // Both tier instances took part.
    const received = await Promise.all(tiers.map(async (t) => [...(await metric(t, 'otelcol_receiver_accepted_spans_total')).values()].reduce((x, y) => x + y, 0)));
    expect(received.every((n) => n > 0)).toBe(true);

    // Phase 2: traffic while tier 1 restarts. Spans of one trace go out before, during and after.
    const b = makeTraces(90);
    await Promise.all(sidecars.map((s, i) => post(s, b.phases[0][i])));
    await new Promise((r) => setTimeout(r, 300)); // delivered to the tiers, pending there
    await stop(tiers[1]); // SIGTERM: its pending traces go to its disk buffer
    // The rest of each trace: tier 1's share waits in the sidecars' queues until it is back.
    for (const phase of b.phases.slice(1)) await Promise.all(sidecars.map((s, i) => post(s, phase[i])));
    await new Promise((r) => setTimeout(r, 1500)); // down a while (rescheduled): the restored traces' wait passes
    tiers[1] = await startAgain(tiers[1]);
    // Decided after the grace (2 s) at the latest, plus the export.
    const deadline = Date.now() + 8000;
    let p2 = check(b.kept, b.dropped);
    while (p2.incomplete.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      p2 = check(b.kept, b.dropped);
    }
    expect(p2.incomplete).toEqual([]);
    expect(p2.leaked).toEqual([]);

    // Nothing was dropped by a sidecar; the tiers dropped only what they sampled out.
    for (const s of sidecars) expect([...(await metric(s, 'sidecar_spans_dropped_total')).values()].reduce((x, y) => x + y, 0)).toBe(0);
    for (const t of tiers) {
      for (const [k, v] of await metric(t, 'sidecar_spans_dropped_total')) if (v > 0) expect(k).toMatch(/reason="sampled_out"/);
    }
    for (const c of [...sidecars, ...tiers]) c.child.proc.kill('SIGTERM');
    await Promise.all([...sidecars, ...tiers].map((c) => c.child.exited));
  }, 40_000);
});
