/**
 * The built-in, versioned table of semantic-convention renames (from the
 * semantic-conventions migration guides: docs/non-normative/http-migration.md
 * for HTTP and networking, v1.20 -> v1.23.1 stable; db-migration.md for
 * databases, v1.24 -> v1.26+).
 *
 * Each entry names the old key, the domain, the first conventions version in
 * which the new name exists, and what to do. In `replace` mode the old key is
 * renamed in place (when the new key is already present the new key wins and
 * the old one is removed); in `duplicate` mode (like
 * OTEL_SEMCONV_STABILITY_OPT_IN=http/dup) the new attribute is added and the
 * old one kept.
 */
import { AttrList, KeyValue, valueToString, type AnyValue } from './edit.js';

export type SemconvMode = 'replace' | 'duplicate';
export type SemconvDomain = 'http' | 'database';

export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CONSUMER = 5;

/** The nine methods the HTTP conventions know by default; others become _OTHER. */
export const KNOWN_HTTP_METHODS = ['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE'];

export interface MigrationContext {
  kind: number;
  mode: SemconvMode;
  knownMethods: ReadonlySet<string>;
}

type Handler = (list: AttrList, kv: KeyValue, ctx: MigrationContext) => boolean;

export interface SemconvEntry {
  old: string;
  domain: SemconvDomain;
  since: string;
  /** Human-readable target, for docs and tests. */
  to: string;
  apply: Handler;
}

function str(v: string): AnyValue {
  return { t: 'string', v };
}

/** Moves kv to newKey (optionally with a new value), honouring the mode. */
function move(list: AttrList, kv: KeyValue, newKey: string, ctx: MigrationContext, newValue?: AnyValue): boolean {
  if (ctx.mode === 'replace') {
    if (list.has(newKey)) {
      list.remove(kv.key);
      return true;
    }
    kv.setKey(newKey);
    if (newValue !== undefined) kv.value = newValue;
    return true;
  }
  if (list.has(newKey)) return false;
  list.push(newValue === undefined ? kv.withKey(newKey) : KeyValue.of(newKey, newValue));
  return true;
}

/** Adds key=value when absent (used for the second half of a split). */
function addIfAbsent(list: AttrList, key: string, value: AnyValue): boolean {
  if (list.has(key)) return false;
  list.push(KeyValue.of(key, value));
  return true;
}

function remove(list: AttrList, kv: KeyValue, ctx: MigrationContext): boolean {
  if (ctx.mode !== 'replace') return false;
  return list.remove(kv.key);
}

const rename =
  (to: string): Handler =>
  (list, kv, ctx) =>
    move(list, kv, to, ctx);

const byKind =
  (server: string | null, other: string | null): Handler =>
  (list, kv, ctx) => {
    const to = ctx.kind === SPAN_KIND_SERVER || ctx.kind === SPAN_KIND_CONSUMER ? server : other;
    return to === null ? false : move(list, kv, to, ctx);
  };

const method: Handler = (list, kv, ctx) => {
  const original = valueToString(kv.value);
  if (ctx.knownMethods.has(original)) return move(list, kv, 'http.request.method', ctx);
  const changed = move(list, kv, 'http.request.method', ctx, str('_OTHER'));
  return addIfAbsent(list, 'http.request.method_original', str(original)) || changed;
};

const target: Handler = (list, kv, ctx) => {
  const t = valueToString(kv.value);
  let end = t.indexOf('#');
  if (end < 0) end = t.length;
  const q = t.indexOf('?');
  const path = q >= 0 && q < end ? t.slice(0, q) : t.slice(0, end);
  const query = q >= 0 && q < end ? t.slice(q + 1, end) : '';
  const changed = move(list, kv, 'url.path', ctx, str(path));
  if (query === '') return changed;
  return addIfAbsent(list, 'url.query', str(query)) || changed;
};

function protocolVersion(v: string): string {
  if (v === '2.0') return '2';
  if (v === '3.0') return '3';
  return v;
}

const flavor: Handler = (list, kv, ctx) => {
  const v = valueToString(kv.value);
  const changed = move(list, kv, 'network.protocol.version', ctx, str(protocolVersion(v)));
  if (v === 'QUIC' || v === 'SPDY') return changed;
  return addIfAbsent(list, 'network.protocol.name', str('http')) || changed;
};

const netProtocolVersion: Handler = (list, kv, ctx) => move(list, kv, 'network.protocol.version', ctx, str(protocolVersion(valueToString(kv.value))));

const TRANSPORT: Record<string, string> = { ip_tcp: 'tcp', ip_udp: 'udp', pipe: 'pipe', inproc: 'inproc', unix: 'unix', other: 'other' };
const transport: Handler = (list, kv, ctx) => {
  const v = valueToString(kv.value);
  return move(list, kv, 'network.transport', ctx, str(TRANSPORT[v] ?? v));
};

/** http.host "name:port" -> server.address (+ server.port). */
const host: Handler = (list, kv, ctx) => {
  const v = valueToString(kv.value);
  let name = v;
  let port: number | undefined;
  const m = /^(\[[^\]]*\]|[^:]*):([0-9]{1,5})$/.exec(v);
  if (m !== null) {
    name = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
    port = Number(m[2]);
  }
  const changed = move(list, kv, 'server.address', ctx, str(name));
  if (port === undefined) return changed;
  return addIfAbsent(list, 'server.port', { t: 'int', v: BigInt(port) }) || changed;
};

const redisIndex: Handler = (list, kv, ctx) => move(list, kv, 'db.namespace', ctx, str(valueToString(kv.value)));

const drop: Handler = (list, kv, ctx) => remove(list, kv, ctx);

const HTTP = '1.23.0';
const DB = '1.26.0';

export const SEMCONV_TABLE: readonly SemconvEntry[] = [
  // HTTP, common
  { old: 'http.method', domain: 'http', since: HTTP, to: 'http.request.method (+ http.request.method_original; unknown -> _OTHER)', apply: method },
  { old: 'http.status_code', domain: 'http', since: HTTP, to: 'http.response.status_code', apply: rename('http.response.status_code') },
  { old: 'http.request_content_length', domain: 'http', since: HTTP, to: 'http.request.body.size', apply: rename('http.request.body.size') },
  { old: 'http.response_content_length', domain: 'http', since: HTTP, to: 'http.response.body.size', apply: rename('http.response.body.size') },
  { old: 'http.flavor', domain: 'http', since: HTTP, to: 'network.protocol.version (+ network.protocol.name=http)', apply: flavor },
  { old: 'http.user_agent', domain: 'http', since: HTTP, to: 'user_agent.original', apply: rename('user_agent.original') },
  // HTTP client
  { old: 'http.url', domain: 'http', since: HTTP, to: 'url.full', apply: rename('url.full') },
  { old: 'http.resend_count', domain: 'http', since: HTTP, to: 'http.request.resend_count', apply: rename('http.request.resend_count') },
  // HTTP server
  { old: 'http.target', domain: 'http', since: HTTP, to: 'url.path + url.query', apply: target },
  { old: 'http.scheme', domain: 'http', since: HTTP, to: 'url.scheme', apply: rename('url.scheme') },
  { old: 'http.client_ip', domain: 'http', since: HTTP, to: 'client.address', apply: rename('client.address') },
  { old: 'http.host', domain: 'http', since: HTTP, to: 'server.address (+ server.port)', apply: host },
  // networking
  { old: 'net.peer.name', domain: 'http', since: HTTP, to: 'server.address (client.address on server spans)', apply: byKind('client.address', 'server.address') },
  { old: 'net.peer.port', domain: 'http', since: HTTP, to: 'server.port (client.port on server spans)', apply: byKind('client.port', 'server.port') },
  { old: 'net.peer.ip', domain: 'http', since: HTTP, to: 'network.peer.address', apply: rename('network.peer.address') },
  { old: 'net.host.name', domain: 'http', since: HTTP, to: 'server.address (server spans)', apply: byKind('server.address', null) },
  { old: 'net.host.port', domain: 'http', since: HTTP, to: 'server.port (server spans)', apply: byKind('server.port', null) },
  { old: 'net.host.ip', domain: 'http', since: HTTP, to: 'network.local.address', apply: rename('network.local.address') },
  { old: 'net.sock.peer.addr', domain: 'http', since: HTTP, to: 'network.peer.address', apply: rename('network.peer.address') },
  { old: 'net.sock.peer.port', domain: 'http', since: HTTP, to: 'network.peer.port', apply: rename('network.peer.port') },
  { old: 'net.sock.host.addr', domain: 'http', since: HTTP, to: 'network.local.address', apply: rename('network.local.address') },
  { old: 'net.sock.host.port', domain: 'http', since: HTTP, to: 'network.local.port', apply: rename('network.local.port') },
  { old: 'net.protocol.name', domain: 'http', since: HTTP, to: 'network.protocol.name', apply: rename('network.protocol.name') },
  { old: 'net.protocol.version', domain: 'http', since: HTTP, to: 'network.protocol.version', apply: netProtocolVersion },
  { old: 'net.transport', domain: 'http', since: HTTP, to: 'network.transport (ip_tcp -> tcp, ip_udp -> udp)', apply: transport },
  { old: 'net.sock.family', domain: 'http', since: HTTP, to: '(removed)', apply: drop },
  { old: 'net.sock.peer.name', domain: 'http', since: HTTP, to: '(removed)', apply: drop },
  // database
  { old: 'db.statement', domain: 'database', since: DB, to: 'db.query.text', apply: rename('db.query.text') },
  { old: 'db.operation', domain: 'database', since: DB, to: 'db.operation.name', apply: rename('db.operation.name') },
  { old: 'db.name', domain: 'database', since: DB, to: 'db.namespace', apply: rename('db.namespace') },
  { old: 'db.sql.table', domain: 'database', since: DB, to: 'db.collection.name', apply: rename('db.collection.name') },
  { old: 'db.cassandra.table', domain: 'database', since: DB, to: 'db.collection.name', apply: rename('db.collection.name') },
  { old: 'db.mongodb.collection', domain: 'database', since: DB, to: 'db.collection.name', apply: rename('db.collection.name') },
  { old: 'db.cosmosdb.container', domain: 'database', since: DB, to: 'db.collection.name', apply: rename('db.collection.name') },
  { old: 'db.redis.database_index', domain: 'database', since: DB, to: 'db.namespace', apply: redisIndex },
  { old: 'db.connection_string', domain: 'database', since: DB, to: '(removed)', apply: drop },
  { old: 'db.user', domain: 'database', since: DB, to: '(removed)', apply: drop },
];

export const LATEST_SEMCONV_VERSION = '1.26.0';

/** Compares dotted versions numerically; returns <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The entries that apply for a target version and set of domains, keyed by old key. */
export function semconvEntries(targetVersion: string, domains: readonly SemconvDomain[]): Map<string, SemconvEntry> {
  const out = new Map<string, SemconvEntry>();
  for (const e of SEMCONV_TABLE) {
    if (!domains.includes(e.domain)) continue;
    if (compareVersions(e.since, targetVersion) > 0) continue;
    out.set(e.old, e);
  }
  return out;
}

/** Applies the migration to one attribute list; returns true when it changed. */
export function migrate(list: AttrList, table: Map<string, SemconvEntry>, ctx: MigrationContext): boolean {
  let changed = false;
  // Snapshot: handlers rename in place, append, or remove.
  const items = list.items.slice();
  for (const kv of items) {
    const e = table.get(kv.key);
    if (e === undefined) continue;
    if (list.items.indexOf(kv) < 0) continue;
    if (e.apply(list, kv, ctx)) changed = true;
  }
  return changed;
}
