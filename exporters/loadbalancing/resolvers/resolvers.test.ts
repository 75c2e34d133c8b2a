import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../../collector/telemetry/logger.js';
import { waitFor } from '../../exporterhelper/testing.js';
import { DnsResolver } from './dns.js';
import { K8sResolver } from './k8s.js';
import { StaticResolver } from './static.js';
import type { ResolverEvents } from './resolver.js';

function recorder() {
  const lists: string[][] = [];
  const resolutions: boolean[] = [];
  const events: ResolverEvents = { onChange: (l) => lists.push(l), onResolution: (ok) => resolutions.push(ok) };
  return { lists, resolutions, events, last: () => lists[lists.length - 1] };
}

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

describe('static resolver', () => {
  it('hands out the sorted, distinct list once', async () => {
    const r = recorder();
    await new StaticResolver(['b:4317', 'a:4317', 'b:4317']).start(r.events);
    expect(r.lists).toEqual([['a:4317', 'b:4317']]);
  });
});

describe('dns resolver', () => {
  it('follows changing answers, keeps the last good list on errors, timeouts and empty answers', async () => {
    let answer: () => Promise<string[]> = async () => ['10.0.0.2', '10.0.0.1'];
    const res = new DnsResolver({ hostname: 'sampler-headless', port: 4317, intervalMs: 60_000, timeoutMs: 50, logger: silentLogger(), lookup: () => answer() });
    cleanup.push(() => res.shutdown());
    const r = recorder();
    await res.start(r.events);
    expect(r.last()).toEqual(['10.0.0.1:4317', '10.0.0.2:4317']);

    answer = async () => ['10.0.0.1', '10.0.0.2']; // same set, other order: no change
    await res.resolveNow();
    expect(r.lists).toHaveLength(1);

    answer = async () => ['10.0.0.3', 'fd00::5'];
    await res.resolveNow();
    expect(r.last()).toEqual(['10.0.0.3:4317', '[fd00::5]:4317']);

    for (const bad of [
      async () => {
        throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
      },
      () => new Promise<string[]>(() => {}), // never answers: the timeout applies
      async () => [],
    ]) {
      answer = bad;
      await res.resolveNow();
    }
    expect(r.lists).toHaveLength(2);
    expect(r.last()).toEqual(['10.0.0.3:4317', '[fd00::5]:4317']);
    expect(r.resolutions).toEqual([true, true, true, false, false, false]);
  });
});

/** A fake API server: EndpointSlices list + watch, as the kubelet-facing API serves them. */
class FakeApi {
  readonly server: http.Server;
  slices: Record<string, unknown> = {};
  rv = 100;
  listStatus = 200;
  requests: string[] = [];
  authHeaders: string[] = [];
  watchers: http.ServerResponse[] = [];
  /** Answer the next watch with 410 Gone. */
  goneNext = false;

  constructor() {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      this.requests.push(url.pathname + url.search);
      this.authHeaders.push(String(req.headers.authorization));
      if (url.pathname !== '/apis/discovery.k8s.io/v1/namespaces/observability/endpointslices') {
        res.writeHead(404).end();
        return;
      }
      if (url.searchParams.get('labelSelector') !== 'kubernetes.io/service-name=sampler') {
        res.writeHead(400).end();
        return;
      }
      if (url.searchParams.get('watch') === '1') {
        if (this.goneNext) {
          this.goneNext = false;
          res.writeHead(410).end('{"kind":"Status","code":410}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        this.watchers.push(res);
        return;
      }
      if (this.listStatus !== 200) {
        res.writeHead(this.listStatus).end('{"message":"boom"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ metadata: { resourceVersion: String(this.rv) }, items: Object.values(this.slices) }));
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  setSlice(name: string, endpoints: Array<{ ip: string; ready?: boolean | null }>): Record<string, unknown> {
    const s = {
      metadata: { name, resourceVersion: String(++this.rv) },
      addressType: 'IPv4',
      endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: e.ready === undefined ? {} : { ready: e.ready } })),
    };
    this.slices[name] = s;
    return s;
  }
  send(ev: unknown): void {
    for (const w of this.watchers) w.write(JSON.stringify(ev) + '\n');
  }
  closeWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers = [];
  }
  async close(): Promise<void> {
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('k8s resolver (EndpointSlices through a fake API server)', () => {
  async function setup() {
    const api = new FakeApi();
    const url = await api.start();
    cleanup.push(() => api.close());
    const sa = fs.mkdtempSync(path.join(os.tmpdir(), 'sa-'));
    cleanup.push(() => fs.rmSync(sa, { recursive: true, force: true }));
    fs.writeFileSync(path.join(sa, 'token'), 'token-1\n');
    fs.writeFileSync(path.join(sa, 'namespace'), 'observability');
    const res = new K8sResolver({ service: 'sampler', ports: [4317], timeoutMs: 1000, logger: silentLogger(), apiUrl: url, serviceAccountDir: sa, retryMs: 10 });
    cleanup.push(() => res.shutdown());
    return { api, res, sa };
  }

  it('lists ready endpoints only, follows the watch, relists on 410, keeps the set on API errors', async () => {
    const { api, res, sa } = await setup();
    api.setSlice('sampler-abc', [{ ip: '10.1.0.1' }, { ip: '10.1.0.2', ready: false }, { ip: '10.1.0.3', ready: true }]);
    const r = recorder();
    await res.start(r.events);
    expect(r.last()).toEqual(['10.1.0.1:4317', '10.1.0.3:4317']); // not-ready 10.1.0.2 left out
    expect(api.authHeaders[0]).toBe('Bearer token-1');
    await waitFor(() => api.watchers.length === 1);
    expect(api.requests[1]).toContain('resourceVersion=101');

    // A pod turns not ready (terminating): it leaves at once.
    api.send({ type: 'MODIFIED', object: api.setSlice('sampler-abc', [{ ip: '10.1.0.1', ready: false }, { ip: '10.1.0.2', ready: true }, { ip: '10.1.0.3' }]) });
    await waitFor(() => r.lists.length === 2);
    expect(r.last()).toEqual(['10.1.0.2:4317', '10.1.0.3:4317']);

    // A second slice, then it is deleted; a bookmark changes nothing.
    api.send({ type: 'ADDED', object: api.setSlice('sampler-def', [{ ip: '10.1.0.9' }]) });
    await waitFor(() => r.lists.length === 3);
    expect(r.last()).toEqual(['10.1.0.2:4317', '10.1.0.3:4317', '10.1.0.9:4317']);
    api.send({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '500' } } });
    const gone = api.slices['sampler-def'];
    delete api.slices['sampler-def'];
    api.send({ type: 'DELETED', object: gone });
    await waitFor(() => r.lists.length === 4);
    expect(r.last()).toEqual(['10.1.0.2:4317', '10.1.0.3:4317']);

    // The server ends the watch: it resumes from the last resourceVersion, no relist.
    fs.writeFileSync(path.join(sa, 'token'), 'token-2\n'); // rotated token is picked up
    const before = api.requests.length;
    api.closeWatches();
    await waitFor(() => api.watchers.length === 1);
    expect(api.requests.slice(before)).toHaveLength(1);
    expect(api.requests[api.requests.length - 1]).toContain('watch=1');
    expect(api.authHeaders[api.authHeaders.length - 1]).toBe('Bearer token-2');

    // 410 Gone: relist (the set changed meanwhile; the list brings it).
    api.goneNext = true;
    api.setSlice('sampler-abc', [{ ip: '10.1.0.7' }]);
    api.closeWatches();
    await waitFor(() => r.lists.length === 5);
    expect(r.last()).toEqual(['10.1.0.7:4317']);

    // API errors: the last good set stays; the resolver keeps trying and recovers.
    api.listStatus = 500;
    api.goneNext = true;
    const okBefore = r.resolutions.filter((x) => x).length;
    api.closeWatches();
    await waitFor(() => r.resolutions.filter((x) => !x).length >= 2);
    expect(r.last()).toEqual(['10.1.0.7:4317']);
    expect(r.lists).toHaveLength(5);
    api.listStatus = 200;
    api.setSlice('sampler-abc', [{ ip: '10.1.0.7' }, { ip: '10.1.0.8' }]);
    await waitFor(() => r.lists.length === 6);
    expect(r.last()).toEqual(['10.1.0.7:4317', '10.1.0.8:4317']);
    expect(r.resolutions.filter((x) => x).length).toBeGreaterThan(okBefore);
  });

  it('an unreachable API server at start resolves nothing and keeps retrying', async () => {
    const { api, res } = await setup();
    api.listStatus = 503;
    const r = recorder();
    await res.start(r.events);
    expect(r.lists).toHaveLength(0);
    expect(r.resolutions[0]).toBe(false);
    api.listStatus = 200;
    api.setSlice('s', [{ ip: '10.2.0.1' }]);
    await waitFor(() => r.lists.length === 1);
    expect(r.last()).toEqual(['10.2.0.1:4317']);
  });
});
