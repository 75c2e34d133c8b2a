/**
 * Trace model: a deterministic service graph built from the shape and a seed,
 * and traces drawn from it. Times are offsets in ms from the trace start; the
 * encoder adds the wall-clock base when the trace is sent.
 */
import { Prng } from './prng.js';
import type { ShapeConfig } from './shape.js';

export const KIND_INTERNAL = 1;
export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;

export const CLASS_ERROR = 1;
export const CLASS_SLOW = 2;
export const CLASS_RARE = 4;

export type AttrValue = string | number | boolean;

/** One pod: its resource attributes. `index` is global across services (encoder scratch slot). */
export interface PodDef {
  index: number;
  service: ServiceDef;
  attributes: Array<[string, AttrValue]>;
}

export interface OperationDef {
  service: ServiceDef;
  method: string;
  route: string;
  /** Downstream operations this one may call. */
  calls: OperationDef[];
  rare: boolean;
}

export interface ServiceDef {
  index: number;
  name: string;
  language: string;
  level: number;
  oldSemconv: boolean;
  db: { system: string; name: string; table: string } | undefined;
  pods: PodDef[];
  operations: OperationDef[];
  httpScope: { name: string; version: string };
  dbScope: { name: string; version: string };
}

export interface GenSpan {
  /** Offset of this span's id in trace.ids (8 bytes at 16 + 8*i). */
  parent: number;
  pod: PodDef;
  /** 0 = http scope, 1 = db scope. */
  scope: number;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  /** 0 unset, 1 ok, 2 error. */
  status: number;
  statusMessage: string;
  /** Flat [key, value, key, value, ...]. */
  attrs: AttrValue[];
  /** Exception event, when the span failed. */
  exception: { type: string; message: string } | undefined;
  children: number[];
  selfMs: number;
  parallel: boolean;
}

export interface GenTrace {
  /** 16 bytes of trace id followed by 8 bytes per span id. */
  ids: Uint8Array;
  traceIdHex: string;
  spans: GenSpan[];
  durationMs: number;
  classes: number;
  /** Sequence number within its generator (for determinism checks). */
  seq: number;
}

const SERVICE_NAMES = [
  'frontend', 'checkout', 'cart', 'payment', 'inventory', 'users', 'orders', 'shipping',
  'recommendation', 'search', 'pricing', 'notification', 'catalog', 'auth', 'reviews', 'ads',
];
const LANGUAGES = ['nodejs', 'java', 'go', 'python', 'dotnet'];
const DBS = [
  { system: 'postgresql', name: 'shop', table: 'orders' },
  { system: 'mysql', name: 'catalog', table: 'items' },
  { system: 'redis', name: '0', table: '' },
  { system: 'mongodb', name: 'profiles', table: 'users' },
];
const ROUTES = [
  ['GET', '/api/v1/{svc}/{user_id}'],
  ['GET', '/api/v1/users/{user_id}/orders/{order_id}'],
  ['POST', '/api/v1/{svc}'],
  ['GET', '/api/v1/{svc}/items/{item_id}'],
  ['PUT', '/api/v1/{svc}/{order_id}/status'],
  ['DELETE', '/api/v1/{svc}/items/{item_id}'],
  ['GET', '/api/v1/{svc}/search'],
  ['PATCH', '/api/v1/users/{user_id}/preferences'],
];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'okhttp/4.12.0',
  'python-requests/2.31.0',
];
const ERRORS = [
  { type: 'TimeoutError', message: 'upstream request timed out after 2000ms' },
  { type: 'java.sql.SQLTransientConnectionException', message: 'HikariPool-1 - Connection is not available' },
  { type: 'Error', message: 'ECONNRESET' },
  { type: 'ValueError', message: 'invalid literal for int() with base 10' },
];

function scopeFor(language: string, kind: 'http' | 'db', system: string): { name: string; version: string } {
  switch (language) {
    case 'java':
      return kind === 'http' ? { name: 'io.opentelemetry.tomcat-10.0', version: '2.4.0-alpha' } : { name: 'io.opentelemetry.jdbc', version: '2.4.0-alpha' };
    case 'go':
      return kind === 'http'
        ? { name: 'go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp', version: '0.51.0' }
        : { name: 'github.com/XSAM/otelsql', version: '0.31.0' };
    case 'python':
      return kind === 'http' ? { name: 'opentelemetry.instrumentation.flask', version: '0.45b0' } : { name: 'opentelemetry.instrumentation.psycopg2', version: '0.45b0' };
    case 'dotnet':
      return kind === 'http' ? { name: 'Microsoft.AspNetCore', version: '8.0.0' } : { name: 'OpenTelemetry.Instrumentation.SqlClient', version: '1.8.0-beta.1' };
    default:
      return kind === 'http'
        ? { name: '@opentelemetry/instrumentation-http', version: '0.51.1' }
        : { name: system === 'redis' ? '@opentelemetry/instrumentation-ioredis' : '@opentelemetry/instrumentation-pg', version: '0.40.0' };
  }
}

function uuid(rng: Prng): string {
  const h = rng.hex(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const POD_SUFFIX = 'bcdfghjklmnpqrstvwxz2456789';
function podSuffix(rng: Prng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += POD_SUFFIX[rng.int(0, POD_SUFFIX.length - 1)];
  return s;
}

/** The service graph: services by level, each operation calling operations one or more levels down. */
export class ServiceGraph {
  readonly services: ServiceDef[] = [];
  readonly pods: PodDef[] = [];
  readonly entries: OperationDef[] = [];
  readonly rareEntry: OperationDef;

  constructor(
    readonly shape: ShapeConfig,
    seed: string | number,
  ) {
    const rng = new Prng(`graph:${seed}`);
    const n = shape.services;
    const levels = Math.max(1, shape.depth - 1);
    for (let i = 0; i < n; i++) {
      const base = SERVICE_NAMES[i % SERVICE_NAMES.length];
      const name = i < SERVICE_NAMES.length ? base : `${base}-${Math.floor(i / SERVICE_NAMES.length)}`;
      const language = i === 0 ? 'nodejs' : rng.pick(LANGUAGES);
      const level = i === 0 ? 0 : 1 + Math.floor(((i - 1) * levels) / Math.max(1, n - 1));
      const db = i === 0 ? undefined : rng.pick(DBS);
      const svc: ServiceDef = {
        index: i,
        name,
        language,
        level,
        oldSemconv: i > 0 && rng.chance(shape.old_semconv_fraction),
        db,
        pods: [],
        operations: [],
        httpScope: scopeFor(language, 'http', ''),
        dbScope: scopeFor(language, 'db', db?.system ?? ''),
      };
      const rs = podSuffix(rng, 10);
      const node = `ip-10-0-${rng.int(0, 31)}-${rng.int(2, 254)}.ec2.internal`;
      for (let p = 0; p < shape.pods_per_service; p++) {
        const podName = `${name}-${rs}-${podSuffix(rng, 5)}`;
        const attrs: Array<[string, AttrValue]> = [
          ['service.name', name],
          ['service.namespace', 'shop'],
          ['service.version', `1.${rng.int(0, 20)}.${rng.int(0, 9)}`],
          ['service.instance.id', uuid(rng)],
          ['deployment.environment', 'production'],
          ['telemetry.sdk.name', 'opentelemetry'],
          ['telemetry.sdk.language', language],
          ['telemetry.sdk.version', '1.24.0'],
          ['k8s.cluster.name', 'prod-eu-west-1'],
          ['k8s.namespace.name', 'shop'],
          ['k8s.deployment.name', name],
          ['k8s.replicaset.name', `${name}-${rs}`],
          ['k8s.pod.name', podName],
          ['k8s.pod.uid', uuid(rng)],
          ['k8s.node.name', p % 2 === 0 ? node : `ip-10-0-${rng.int(0, 31)}-${rng.int(2, 254)}.ec2.internal`],
          ['k8s.container.name', name],
          ['container.id', rng.hex(32)],
          ['host.name', podName],
          ['cloud.provider', 'aws'],
          ['cloud.region', 'eu-west-1'],
          ['process.pid', rng.int(1, 64)],
        ];
        const pod: PodDef = { index: this.pods.length, service: svc, attributes: attrs };
        svc.pods.push(pod);
        this.pods.push(pod);
      }
      for (let o = 0; o < shape.operations_per_service; o++) {
        const [method, tmpl] = ROUTES[(o + i) % ROUTES.length];
        svc.operations.push({ service: svc, method, route: tmpl.replace('{svc}', name), calls: [], rare: false });
      }
      this.services.push(svc);
    }
    // Wire each operation to operations of deeper services.
    for (const svc of this.services) {
      const deeper = this.services.filter((s) => s.level > svc.level);
      if (deeper.length === 0) continue;
      for (const op of svc.operations) {
        const k = rng.int(1, Math.max(1, Math.min(shape.fan_out, deeper.length)));
        for (let c = 0; c < k; c++) {
          const next = deeper.filter((s) => s.level <= svc.level + 2);
          const target = rng.pick(next.length > 0 ? next : deeper);
          op.calls.push(rng.pick(target.operations));
        }
      }
    }
    const front = this.services[0];
    this.entries.push(...front.operations);
    this.rareEntry = { service: front, method: 'POST', route: shape.rare.route, calls: front.operations[0].calls.slice(), rare: true };
  }
}

function fillRoute(route: string, rng: Prng, shape: ShapeConfig): string {
  return route
    .replace('{user_id}', () => String(1 + Math.floor(Math.pow(rng.next(), 2) * shape.cardinality.users)))
    .replace('{order_id}', () => orderId(rng.int(0, shape.cardinality.orders - 1)))
    .replace('{item_id}', () => `SKU-${String(rng.int(0, shape.cardinality.items - 1)).padStart(6, '0')}`);
}

function orderId(n: number): string {
  let h = (n + 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  const a = Math.imul(h ^ (h >>> 12), 0x297a2d39) >>> 0;
  return h.toString(16).padStart(8, '0') + a.toString(16).padStart(8, '0');
}

function email(rng: Prng, shape: ShapeConfig): string {
  const names = ['jane.doe', 'john.smith', 'a.kowalski', 'li.wei', 'maria.garcia', 'ops'];
  const domains = ['example.com', 'mail.example.org', 'corp.example.net'];
  return `${rng.pick(names)}${rng.int(1, shape.cardinality.users)}@${rng.pick(domains)}`;
}

function bearer(rng: Prng): string {
  return `Bearer eyJhbGciOiJIUzI1NiJ9.${Buffer.from(rng.hex(18), 'hex').toString('base64url')}.${Buffer.from(rng.hex(24), 'hex').toString('base64url')}`;
}

function cardNumber(rng: Prng): string {
  const prefix = rng.pick(['4111', '5500', '3782', '6011']);
  return `${prefix} ${rng.int(1000, 9999)} ${rng.int(1000, 9999)} ${rng.int(1000, 9999)}`;
}

/** Draws traces from a graph. One generator per worker; deterministic given (graph seed, generator seed). */
export class TraceGenerator {
  private readonly rng: Prng;
  private seq = 0;
  private readonly shape: ShapeConfig;

  constructor(
    readonly graph: ServiceGraph,
    seed: string | number,
  ) {
    this.rng = new Prng(`traces:${seed}`);
    this.shape = graph.shape;
  }

  private spanBudget(): number {
    const s = this.shape.spans_per_trace;
    if (s.min === s.max) return s.min;
    const v = Math.round(this.rng.logNormal(s.median, s.sigma));
    return Math.max(s.min, Math.min(s.max, v));
  }

  next(): GenTrace {
    const rng = this.rng;
    const shape = this.shape;
    const budgetTotal = this.spanBudget();
    const rare = rng.chance(shape.rare.rate);
    const isError = rng.chance(shape.error_rate);
    const isSlow = rng.chance(shape.slow.rate);
    const spans: GenSpan[] = [];
    const depthOf: number[] = [];
    const opOf: Array<OperationDef | undefined> = [];
    const entry = rare ? this.graph.rareEntry : rng.pick(this.graph.entries);
    const userAgent = rng.pick(AGENTS);
    const pii = rng.chance(shape.pii_rate);

    const addSpan = (parent: number, pod: PodDef, scope: number, name: string, kind: number, attrs: AttrValue[], depth: number, op: OperationDef | undefined): number => {
      const idx = spans.length;
      spans.push({
        parent,
        pod,
        scope,
        name,
        kind,
        startMs: 0,
        endMs: 0,
        status: 0,
        statusMessage: '',
        attrs,
        exception: undefined,
        children: [],
        selfMs: 0,
        parallel: false,
      });
      depthOf.push(depth);
      opOf.push(op);
      if (parent >= 0) spans[parent].children.push(idx);
      return idx;
    };

    const serverAttrs = (op: OperationDef, url: string): AttrValue[] => {
      const old = op.service.oldSemconv;
      const a: AttrValue[] = old
        ? ['http.method', op.method, 'http.route', op.route, 'http.url', `http://${op.service.name}.shop.svc.cluster.local:8080${url}`, 'http.target', url, 'http.scheme', 'http', 'http.flavor', '1.1', 'http.status_code', 200, 'http.user_agent', userAgent, 'net.host.name', `${op.service.name}.shop.svc.cluster.local`, 'net.host.port', 8080]
        : ['http.request.method', op.method, 'http.route', op.route, 'url.path', url, 'url.scheme', 'http', 'network.protocol.version', '1.1', 'http.response.status_code', 200, 'user_agent.original', userAgent, 'server.address', `${op.service.name}.shop.svc.cluster.local`, 'server.port', 8080];
      if (pii) {
        a.push('enduser.id', email(rng, shape), 'http.request.header.authorization', bearer(rng));
        if (op.service.name === 'payment' || rng.chance(0.2)) a.push('payment.card_number', cardNumber(rng));
      }
      for (let i = 0; i < shape.extra_attributes; i++) a.push(`app.attr_${i}`, `value-${rng.int(0, 99)}`);
      return a;
    };

    const clientAttrs = (from: ServiceDef, to: OperationDef, url: string): AttrValue[] =>
      from.oldSemconv
        ? ['http.method', to.method, 'http.url', `http://${to.service.name}.shop.svc.cluster.local:8080${url}`, 'http.status_code', 200, 'net.peer.name', `${to.service.name}.shop.svc.cluster.local`, 'net.peer.port', 8080]
        : ['http.request.method', to.method, 'url.full', `http://${to.service.name}.shop.svc.cluster.local:8080${url}`, 'http.response.status_code', 200, 'server.address', `${to.service.name}.shop.svc.cluster.local`, 'server.port', 8080];

    const dbSpan = (parent: number, svc: ServiceDef, pod: PodDef, depth: number): void => {
      const db = svc.db ?? DBS[2];
      let name: string;
      let stmt: string;
      const user = 1 + rng.int(0, shape.cardinality.users - 1);
      if (db.system === 'redis') {
        name = rng.chance(0.7) ? 'GET' : 'SET';
        stmt = `${name} session:${rng.hex(8)}`;
      } else if (db.system === 'mongodb') {
        name = `find ${db.table}`;
        stmt = `{"find":"${db.table}","filter":{"_id":${user}}}`;
      } else {
        const op = rng.chance(0.75) ? 'SELECT' : 'UPDATE';
        name = `${op} ${db.name}.${db.table}`;
        stmt =
          op === 'SELECT'
            ? `SELECT * FROM ${db.table} WHERE user_id = ${user}${pii && rng.chance(0.5) ? ` AND email = '${email(rng, shape)}'` : ''} LIMIT 50`
            : `UPDATE ${db.table} SET status = 'shipped' WHERE id = '${orderId(rng.int(0, shape.cardinality.orders - 1))}'`;
      }
      const attrs: AttrValue[] = svc.oldSemconv
        ? ['db.system', db.system, 'db.name', db.name, 'db.statement', stmt, 'db.operation', name.split(' ')[0], 'net.peer.name', `${db.system}.shop.svc.cluster.local`]
        : ['db.system', db.system, 'db.namespace', db.name, 'db.query.text', stmt, 'db.operation.name', name.split(' ')[0], 'server.address', `${db.system}.shop.svc.cluster.local`];
      if (db.table !== '') attrs.push(svc.oldSemconv ? 'db.sql.table' : 'db.collection.name', db.table);
      addSpan(parent, pod, 1, name, KIND_CLIENT, attrs, depth, undefined);
    };

    // Root server span.
    const rootPod = rng.pick(entry.service.pods);
    const rootUrl = fillRoute(entry.route, rng, shape);
    addSpan(-1, rootPod, 0, `${entry.method} ${entry.route}`, KIND_SERVER, serverAttrs(entry, rootUrl), 0, entry);
    let budget = budgetTotal - 1;

    // Breadth-first expansion of calls within the span budget and depth.
    for (let q = 0; q < spans.length && budget > 0; q++) {
      const op = opOf[q];
      if (op === undefined) continue; // db/client spans have no children of their own here
      const d = depthOf[q];
      const calls = op.calls;
      const k = calls.length === 0 ? 0 : rng.int(1, Math.min(shape.fan_out, calls.length));
      for (let c = 0; c < k && budget > 0; c++) {
        const callee = calls[(c + rng.int(0, calls.length - 1)) % calls.length];
        if (budget >= 2 && d + 2 <= shape.depth) {
          const url = fillRoute(callee.route, rng, shape);
          const client = addSpan(q, spans[q].pod, 0, `${callee.method}`, KIND_CLIENT, clientAttrs(op.service, callee, url), d + 1, undefined);
          addSpan(client, rng.pick(callee.service.pods), 0, `${callee.method} ${callee.route}`, KIND_SERVER, serverAttrs(callee, url), d + 2, callee);
          budget -= 2;
        } else if (op.service.db !== undefined && d + 1 <= shape.depth) {
          dbSpan(q, op.service, spans[q].pod, d + 1);
          budget--;
        }
      }
      if (budget > 0 && op.service.db !== undefined && d + 1 <= shape.depth && rng.chance(0.6)) {
        dbSpan(q, op.service, spans[q].pod, d + 1);
        budget--;
      }
    }
    // Whatever budget is left becomes repeated queries / internal work (the N+1 pattern).
    const servers: number[] = [];
    for (let i = 0; i < spans.length; i++) if (opOf[i] !== undefined && depthOf[i] < shape.depth) servers.push(i);
    while (budget > 0) {
      const p = servers[rng.int(0, servers.length - 1)];
      const svc = spans[p].pod.service;
      if (svc.db !== undefined) dbSpan(p, svc, spans[p].pod, depthOf[p] + 1);
      else addSpan(p, spans[p].pod, 0, 'render', KIND_INTERNAL, ['code.function', 'render', 'template.name', 'page.html'], depthOf[p] + 1, undefined);
      budget--;
    }

    // Self times, the slow tail and the error.
    const lat = shape.latency_ms;
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      s.selfMs = s.kind === KIND_CLIENT && s.scope === 1 ? rng.logNormal(lat.median / 2, lat.sigma) : s.kind === KIND_CLIENT ? 0.3 : rng.logNormal(lat.median, lat.sigma);
      s.parallel = s.children.length > 1 && rng.chance(0.35);
    }
    if (isSlow) {
      const leaves = spans.filter((s) => s.children.length === 0);
      const victim = rng.pick(leaves.length > 0 ? leaves : spans);
      victim.selfMs += shape.slow.extra_ms * (1 + 1.5 * rng.next());
    }
    let classes = rare ? CLASS_RARE : 0;
    if (isError) {
      let i = rng.int(0, spans.length - 1);
      const err = rng.pick(ERRORS);
      const s0 = spans[i];
      s0.status = 2;
      s0.statusMessage = err.message;
      s0.exception = err;
      // Callers up the chain often fail too.
      while (spans[i].parent >= 0 && rng.chance(0.7)) {
        i = spans[i].parent;
        const s = spans[i];
        s.status = 2;
        s.statusMessage = 'downstream error';
        setStatusCode(s.attrs, 500);
      }
      if (s0.kind === KIND_SERVER || (s0.kind === KIND_CLIENT && s0.scope === 0)) setStatusCode(s0.attrs, 503);
      classes |= CLASS_ERROR;
    }

    // Layout: each span's children run one after another, or all at once.
    const layout = (i: number, start: number): number => {
      const s = spans[i];
      s.startMs = start;
      let cursor = start + s.selfMs / 2;
      if (s.parallel) {
        let end = cursor;
        for (const c of s.children) end = Math.max(end, layout(c, cursor + 0.05));
        cursor = end;
      } else {
        for (const c of s.children) cursor = layout(c, cursor + 0.05);
      }
      s.endMs = cursor + s.selfMs / 2;
      return s.endMs;
    };
    const durationMs = layout(0, 0);
    if (durationMs >= shape.slow.threshold_ms) classes |= CLASS_SLOW;

    // Ids: 16 trace-id bytes then 8 bytes per span.
    const ids = new Uint8Array(16 + 8 * spans.length);
    rng.fill(ids, 0, ids.length);
    if (ids[0] === 0) ids[0] = 1; // never an all-zero id
    for (let i = 0; i < spans.length; i++) if (ids[16 + 8 * i] === 0) ids[16 + 8 * i] = 1;
    return { ids, traceIdHex: Buffer.from(ids.buffer, ids.byteOffset, 16).toString('hex'), spans, durationMs, classes, seq: this.seq++ };
  }
}

function setStatusCode(attrs: AttrValue[], code: number): void {
  for (let k = 0; k < attrs.length; k += 2) {
    if (attrs[k] === 'http.status_code' || attrs[k] === 'http.response.status_code') attrs[k + 1] = code;
  }
}
