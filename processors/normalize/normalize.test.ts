import { describe, it, expect, afterEach } from 'vitest';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WireReader, WireWriter } from '../../collector/pdata/wire.js';
import { processorFactories } from '../../collector/components.js';
import { withDefaults } from '../../config/defaults.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import type { Span } from '../../collector/pdata/spans.js';
import { NormalizeConfig } from './config.js';
import { normalizeProcessorFactory, validateNormalize, neverMatches } from './index.js';
import {
  harness,
  spansFor,
  readSpans,
  requestFor,
  httpServerSpan,
  httpClientSpan,
  pgSpan,
  mongoSpan,
  redisSpan,
  cleanSpan,
  KIND_SERVER,
  KIND_CLIENT,
  type FixtureSpan,
} from './testdata/fixtures.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

function copyBytes(spans: Span[]): Uint8Array[] {
  return spans.map((s) => s.bytes().slice());
}

function one(attrs: Record<string, unknown>, name = 'op', kind = KIND_SERVER, extra: Partial<FixtureSpan> = {}): Span[] {
  return spansFor([{ name, kind, attributes: attrs as FixtureSpan['attributes'], ...extra }]);
}

async function attrsAfter(config: unknown, attrs: Record<string, unknown>, kind = KIND_SERVER) {
  const h = harness(config);
  return readSpans(await h.run(one(attrs, 'op', kind))).spans[0].attributes;
}

describe('preset: recommended', () => {
  const checkoutSpan: FixtureSpan = {
    name: 'POST /checkout/alice@example.com',
    kind: KIND_SERVER,
    attributes: {
      'http.request.method': 'POST',
      'url.path': '/checkout/7d444840-9dc0-11d1-b245-5ffdce74fad2/items/42',
      'http.request.header.authorization': [`Bearer ${JWT}`],
      'app.note': 'call me at bob@example.org',
    },
    events: [{ name: 'exception', attributes: { 'exception.type': 'CardDeclined', 'exception.message': 'card 4111 1111 1111 1111 declined for bob@example.org' } }],
  };

  it('gives the exact expected output on a mixed fixture', async () => {
    const h = harness({ preset: 'recommended' });
    const input = spansFor([httpServerSpan, httpClientSpan, pgSpan, mongoSpan, redisSpan, cleanSpan, checkoutSpan]);
    const out = readSpans(await h.run(input));
    expect(out.resources).toEqual([{ 'service.name': 'shop-api' }]);
    expect(out.spans).toEqual([
      {
        name: 'GET /api/users/{id}',
        attributes: {
          'url.full': 'http://shop.example.com:8080/api/users/12345?page=2&token=REDACTED',
          'server.address': 'shop.example.com',
          'http.request.method': 'GET',
          'url.scheme': 'http',
          'url.path': '/api/users/{id}',
          'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
          'network.protocol.version': '1.1',
          'network.transport': 'tcp',
          'network.local.address': '10.1.2.3',
          'network.peer.address': '10.9.8.7',
          'client.port': 53422,
          'http.response.status_code': 200,
          'http.status_text': 'OK',
          'http.route': '/api/users/:id',
          'server.port': 8080,
          'url.query': 'page=2&token=REDACTED',
          'network.protocol.name': 'http',
        },
      },
      {
        name: 'POST',
        attributes: {
          'url.full': 'https://payments.internal/v1/charges/9f8e7d6c5b4a39281706f5e4d3c2b1a0',
          'http.request.method': 'POST',
          'url.path': '/v1/charges/{id}',
          'server.address': 'payments.internal',
          'network.peer.address': '10.0.0.12',
          'server.port': 443,
          'http.response.status_code': 201,
          'http.status_text': 'CREATED',
          'network.protocol.version': '1.1',
          'http.request_content_length_uncompressed': 512,
          'network.protocol.name': 'http',
        },
      },
      {
        name: 'pg.query:SELECT shop',
        attributes: {
          'db.system': 'postgresql',
          'db.namespace': 'shop',
          'server.address': 'db.internal',
          'server.port': 5432,
          'db.query.text': "SELECT id, name FROM users WHERE email = '[REDACTED]'",
        },
      },
      {
        name: 'mongodb.find',
        attributes: {
          'db.system': 'mongodb',
          'db.namespace': 'shop',
          'db.collection.name': 'orders',
          'db.operation.name': 'find',
          'server.address': 'mongo.internal',
          'server.port': 27017,
          'db.query.text': '{"customer":"?"}',
        },
      },
      {
        name: 'redis-GET',
        attributes: { 'db.system': 'redis', 'db.query.text': 'GET session:4711', 'db.namespace': '2', 'server.address': 'redis.internal', 'server.port': 6379 },
      },
      { name: 'render-invoice', attributes: { 'invoice.currency': 'EUR', 'invoice.lines': 3, 'code.function': 'renderInvoice', 'code.filepath': 'src/invoice/render.ts' } },
      {
        name: 'POST /checkout/[REDACTED]',
        attributes: {
          'http.request.method': 'POST',
          'url.path': '/checkout/{id}/items/{id}',
          'http.request.header.authorization': ['[REDACTED]'],
          'app.note': 'call me at [REDACTED]',
        },
        events: [{ name: 'exception', attributes: { 'exception.type': 'CardDeclined', 'exception.message': 'card [REDACTED] declined for [REDACTED]' } }],
      },
    ]);
    expect(await h.telemetry.total('otelcol_processor_normalize_spans_changed_total', { rule: 'preset.semconv' })).toBe(5);
    expect(await h.telemetry.total('otelcol_processor_normalize_values_redacted_total', { detector: 'email' })).toBe(4);
    expect(await h.telemetry.total('otelcol_processor_normalize_values_redacted_total', { detector: 'credit_card' })).toBe(1);
    expect(await h.telemetry.total('otelcol_processor_normalize_values_redacted_total', { detector: 'key' })).toBe(1);
    expect(await h.telemetry.total('otelcol_processor_normalize_values_redacted_total', { detector: 'url_query' })).toBe(2);
    expect(await h.telemetry.total('otelcol_processor_normalize_spans_reencoded_total')).toBe(6);
    const text = await h.telemetry.metricsText();
    for (const secret of ['alice@example.com', 'bob@example.org', '4111', 's3cr3tT0ken', 'eyJ']) expect(text).not.toContain(secret);
  });

  it('leaves spans no rule changes byte-identical (same buffer, same bytes)', async () => {
    const h = harness({ preset: 'recommended' });
    const input = spansFor([cleanSpan, cleanSpan, httpServerSpan]);
    const before = copyBytes(input);
    const bufs = input.map((s) => s.buf);
    const out = await h.run(input);
    expect(out[0].buf).toBe(bufs[0]);
    expect(out[1].buf).toBe(bufs[1]);
    expect(Buffer.from(out[0].bytes()).equals(Buffer.from(before[0]))).toBe(true);
    expect(Buffer.from(out[1].bytes()).equals(Buffer.from(before[1]))).toBe(true);
    expect(Buffer.from(out[2].bytes()).equals(Buffer.from(before[2]))).toBe(false);
    // The re-encoded span keeps its ids, times and index.
    expect(out[2].spanId).toBe(input[2].spanId);
    expect(out[2].traceId).toBe('5b8efff798038103d269b633813fc60c');
  });
});

describe('span edits', () => {
  it('keeps unknown fields and every untouched field of a changed span', async () => {
    const [span] = one({ 'http.method': 'GET', other: 'x' });
    // Append an unknown field 99 (varint 42) to the span.
    const w = new WireWriter(span.len + 8);
    w.raw(span.bytes());
    w.tag(99, 0);
    w.uint32(42);
    const orig = w.finish().slice();
    span.setBytes(orig);
    const h = harness({ rules: [{ semconv: {} }] });
    const [out] = await h.run([span]);
    const fields = (b: Uint8Array) => {
      const r = new WireReader(b);
      const seen: Array<[number, string]> = [];
      while (!r.done()) {
        const s = r.pos;
        const t = r.uint32();
        r.skip(t & 7);
        seen.push([t >>> 3, Buffer.from(b.subarray(s, r.pos)).toString('hex')]);
      }
      return seen;
    };
    const a = fields(orig).filter(([f]) => f !== 9);
    const b = fields(out.bytes()).filter(([f]) => f !== 9);
    expect(b).toEqual(a);
    expect(readSpans([out]).spans[0].attributes).toEqual({ 'http.request.method': 'GET', other: 'x' });
    expect(out.spanId).toBe(span.spanId);
  });

  it('drops a span whose nested data is malformed, counted as normalize_failed', async () => {
    const [good, bad] = spansFor([
      { name: 'a', kind: 1, attributes: { x: '1' } },
      { name: 'b', kind: 1, attributes: { x: '1' } },
    ]);
    const w = new WireWriter(bad.len + 8);
    w.raw(bad.bytes());
    w.tag(9, 2);
    w.uint32(3);
    w.raw(new Uint8Array([0x0a, 0x09, 0x61])); // key says 9 bytes, has 1
    bad.setBytes(w.finish().slice());
    const h = harness({ preset: 'recommended' });
    const out = await h.run([good, bad]);
    expect(out).toEqual([good]);
    expect(await h.telemetry.droppedByReason()).toEqual({ normalize_failed: 1 });
  });
});

describe('semconv', () => {
  it('replace: migrates the HTTP server span of the JS instrumentation', async () => {
    const a = await attrsAfter({ rules: [{ semconv: {} }] }, httpServerSpan.attributes);
    expect(Object.keys(a).filter((k) => k.startsWith('http.') || k.startsWith('net.'))).toEqual(['http.request.method', 'http.response.status_code', 'http.status_text', 'http.route']);
    expect(a['url.path']).toBe('/api/users/12345');
    expect(a['url.query']).toBe('page=2&token=s3cr3tT0ken');
    expect(a['client.port']).toBe(53422);
    expect(a['network.peer.address']).toBe('10.9.8.7');
  });

  it('uses server.* for the peer of client spans', async () => {
    const a = await attrsAfter({ rules: [{ semconv: {} }] }, { 'net.peer.name': 'api.example.com', 'net.peer.port': 443 }, KIND_CLIENT);
    expect(a).toEqual({ 'server.address': 'api.example.com', 'server.port': 443 });
  });

  it('duplicate: keeps old names and adds new ones (http/dup)', async () => {
    const a = await attrsAfter({ rules: [{ semconv: { mode: 'duplicate' } }] }, { 'http.method': 'GET', 'http.status_code': 404, 'http.target': '/a?b=1' });
    expect(a).toEqual({
      'http.method': 'GET',
      'http.status_code': 404,
      'http.target': '/a?b=1',
      'http.request.method': 'GET',
      'http.response.status_code': 404,
      'url.path': '/a',
      'url.query': 'b=1',
    });
  });

  it('unknown HTTP methods become _OTHER with the original kept', async () => {
    expect(await attrsAfter({ rules: [{ semconv: {} }] }, { 'http.method': 'PURGE' })).toEqual({ 'http.request.method': '_OTHER', 'http.request.method_original': 'PURGE' });
    expect(await attrsAfter({ rules: [{ semconv: { known_methods: ['GET', 'PURGE'] } }] }, { 'http.method': 'PURGE' })).toEqual({ 'http.request.method': 'PURGE' });
  });

  it('migrates database attributes (pg, mongodb, redis)', async () => {
    expect(await attrsAfter({ rules: [{ semconv: {} }] }, pgSpan.attributes, KIND_CLIENT)).toEqual({
      'db.system': 'postgresql',
      'db.namespace': 'shop',
      'server.address': 'db.internal',
      'server.port': 5432,
      'db.query.text': "SELECT id, name FROM users WHERE email = 'alice@example.com'",
    });
    expect(await attrsAfter({ rules: [{ semconv: {} }] }, redisSpan.attributes, KIND_CLIENT)).toMatchObject({ 'db.namespace': '2', 'db.query.text': 'GET session:4711' });
  });

  it('the new key wins when both are present', async () => {
    expect(await attrsAfter({ rules: [{ semconv: {} }] }, { 'http.status_code': 500, 'http.response.status_code': 503 })).toEqual({ 'http.response.status_code': 503 });
  });

  it('target_version and domains select the table', async () => {
    expect(await attrsAfter({ rules: [{ semconv: { target_version: '1.23.0' } }] }, { 'db.statement': 'x', 'http.url': 'u' })).toEqual({ 'db.statement': 'x', 'url.full': 'u' });
    expect(await attrsAfter({ rules: [{ semconv: { domains: ['database'] } }] }, { 'db.statement': 'x', 'http.url': 'u' })).toEqual({ 'db.query.text': 'x', 'http.url': 'u' });
  });
});

describe('rename and key_style', () => {
  it('renames keys; on_conflict decides when the target exists', async () => {
    const attrs = { Env: 'prod', 'deployment.environment': 'staging', team: 'pay' };
    const keys = { Env: 'deployment.environment', team: 'team.name' };
    expect(await attrsAfter({ rules: [{ rename: { keys } }] }, attrs)).toEqual({ 'deployment.environment': 'staging', 'team.name': 'pay' });
    expect(await attrsAfter({ rules: [{ rename: { keys, on_conflict: 'overwrite' } }] }, attrs)).toEqual({ 'deployment.environment': 'prod', 'team.name': 'pay' });
    expect(await attrsAfter({ rules: [{ rename: { keys, on_conflict: 'keep_both' } }] }, attrs)).toEqual({ Env: 'prod', 'deployment.environment': 'staging', 'team.name': 'pay' });
  });

  it('rewrites keys to dotted snake case, with exceptions', async () => {
    const a = await attrsAfter({ rules: [{ key_style: { style: 'snake_case', except: ['X-Keep'] } }] }, { userId: 1, 'HTTP-Status': 2, 'App.UserID': 3, 'X-Keep': 4, 'http.route': '/' });
    expect(a).toEqual({ user_id: 1, http_status: 2, 'app.user_id': 3, 'X-Keep': 4, 'http.route': '/' });
    expect(await attrsAfter({ rules: [{ key_style: { style: 'lowercase' } }] }, { Env: 'p', 'Team.Name': 'x' })).toEqual({ env: 'p', 'team.name': 'x' });
  });

  it('leaves a key alone when its restyled form already exists', async () => {
    expect(await attrsAfter({ rules: [{ key_style: { style: 'lowercase' } }] }, { Env: 'a', env: 'b' })).toEqual({ Env: 'a', env: 'b' });
  });
});

describe('set, delete, allow', () => {
  const base = { 'deployment.environment': 'prod', empty: '', 'user.id': 'u1' };
  it('insert / update / upsert / default / copy_from', async () => {
    const run = (set: object) => attrsAfter({ rules: [{ set }] }, base);
    expect(await run({ key: 'team', value: 'pay', action: 'insert' })).toMatchObject({ team: 'pay' });
    expect(await run({ key: 'deployment.environment', value: 'x', action: 'insert' })).toMatchObject({ 'deployment.environment': 'prod' });
    expect(await run({ key: 'team', value: 'pay', action: 'update' })).not.toHaveProperty('team');
    expect(await run({ key: 'deployment.environment', value: 'x', action: 'update' })).toMatchObject({ 'deployment.environment': 'x' });
    expect(await run({ key: 'deployment.environment', value: 7, action: 'upsert' })).toMatchObject({ 'deployment.environment': 7 });
    expect(await run({ key: 'empty', value: 'filled', action: 'default' })).toMatchObject({ empty: 'filled' });
    expect(await run({ key: 'deployment.environment', value: 'filled', action: 'default' })).toMatchObject({ 'deployment.environment': 'prod' });
    expect(await run({ key: 'enduser.id', copy_from: 'user.id', action: 'insert' })).toMatchObject({ 'enduser.id': 'u1', 'user.id': 'u1' });
  });

  it('an upsert that changes nothing does not re-encode', async () => {
    const h = harness({ rules: [{ set: { key: 'a', value: 'b' } }] });
    const spans = one({ a: 'b' });
    const buf = spans[0].buf;
    await h.run(spans);
    expect(spans[0].buf).toBe(buf);
  });

  it('deletes by key and by key pattern', async () => {
    const attrs = { 'db.user': 'app', 'http.request.header.x-debug': 'on', 'http.request.header.accept': '*/*', keep: 1 };
    expect(await attrsAfter({ rules: [{ delete: { keys: ['db.user'], key_pattern: '^http\\.request\\.header\\.x-' } }] }, attrs)).toEqual({ 'http.request.header.accept': '*/*', keep: 1 });
  });

  it('allow-list fails closed on span and event attributes', async () => {
    const h = harness({ rules: [{ scope: ['span', 'event'], allow: { keys: ['http.request.method'], key_patterns: ['^exception\\.'] } }] });
    const out = readSpans(
      await h.run(
        spansFor([
          {
            name: 'x',
            kind: 2,
            attributes: { 'http.request.method': 'GET', 'user.email': 'a@b.co', surprise: ['x'] },
            events: [{ name: 'exception', attributes: { 'exception.message': 'm', 'user.id': 'u' } }],
          },
        ]),
      ),
    ).spans[0];
    expect(out.attributes).toEqual({ 'http.request.method': 'GET' });
    expect(out.events).toEqual([{ name: 'exception', attributes: { 'exception.message': 'm' } }]);
  });
});

describe('redact', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('masks whole values by key and key pattern, keeping array shape', async () => {
    const a = await attrsAfter(
      { rules: [{ redact: { keys: ['enduser.id'], key_pattern: '(?i)password|cookie' } }] },
      { 'enduser.id': 'u-123', 'db.Password': 'hunter2', 'http.request.header.cookie': ['a=1', 'b=2'], 'http.route': '/x' },
    );
    expect(a).toEqual({ 'enduser.id': '[REDACTED]', 'db.Password': '[REDACTED]', 'http.request.header.cookie': ['[REDACTED]', '[REDACTED]'], 'http.route': '/x' });
  });

  it('hashes with SHA-256, or HMAC-SHA-256 keyed from a file', async () => {
    expect(await attrsAfter({ rules: [{ redact: { keys: ['enduser.id'], action: 'hash' } }] }, { 'enduser.id': 'u-123' })).toEqual({
      'enduser.id': createHash('sha256').update('u-123').digest('hex').slice(0, 16),
    });
    dir = mkdtempSync(join(tmpdir(), 'normalize-'));
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, 'pepper\n');
    const h = harness({ rules: [{ redact: { keys: ['enduser.id'], action: 'hash', hash_key_file: keyFile, hash_length: 64 } }] });
    const a = readSpans(await h.run(one({ 'enduser.id': 'u-123' }))).spans[0].attributes;
    expect(a['enduser.id']).toBe(createHmac('sha256', 'pepper').update('u-123').digest('hex'));
  });

  it('detectors reach strings, arrays, nested kvlists, ints, events and span names', async () => {
    const h = harness({ rules: [{ scope: ['span', 'event', 'span_name'], redact: { detectors: ['email', 'credit_card', 'bearer', 'jwt', 'ipv4', 'ipv6'] } }] });
    const out = readSpans(
      await h.run(
        spansFor([
          {
            name: 'notify alice@example.com',
            kind: 1,
            attributes: {
              s: 'to: alice@example.com',
              arr: ['ok', `token ${JWT}`, 'Bearer abcDEF123456ghiJKL'],
              nested: { inner: { deep: 'card 5555-5555-5555-4444', list: ['10.1.2.3', 'fe80::1ff:fe23:4567:890a'] } },
              card: 4111111111111111,
              fine: 'order 12345 shipped',
            },
            events: [{ name: 'log', attributes: { msg: 'from 2001:db8::1 user bob@example.org' } }],
          },
        ]),
      ),
    ).spans[0];
    expect(out).toEqual({
      name: 'notify [REDACTED]',
      attributes: {
        s: 'to: [REDACTED]',
        arr: ['ok', 'token [REDACTED]', 'Bearer [REDACTED]'],
        nested: { inner: { deep: 'card [REDACTED]', list: ['[REDACTED]', '[REDACTED]'] } },
        card: '[REDACTED]',
        fine: 'order 12345 shipped',
      },
      events: [{ name: 'log', attributes: { msg: 'from [REDACTED] user [REDACTED]' } }],
    });
    for (const d of ['email', 'credit_card', 'bearer', 'jwt', 'ipv4', 'ipv6']) {
      expect(await h.telemetry.total('otelcol_processor_normalize_values_redacted_total', { detector: d })).toBeGreaterThan(0);
    }
  });

  it('value patterns and exclude_keys', async () => {
    const a = await attrsAfter({ rules: [{ redact: { value_patterns: ['SSN-[0-9]{3}-[0-9]{4}'], detectors: ['email'], exclude_keys: ['support.email'] } }] }, {
      note: 'id SSN-123-4567 ok',
      'support.email': 'help@example.com',
      other: 'x@example.com',
    });
    expect(a).toEqual({ note: 'id [REDACTED] ok', 'support.email': 'help@example.com', other: '[REDACTED]' });
  });

  it('sanitizes URL credentials and query strings', async () => {
    const attrs = { 'url.full': 'https://bob:pw@api.example.com/x?sig=abc&q=shoes#top', 'url.query': 'password=p&x=1' };
    expect(await attrsAfter({ rules: [{ redact: { url_query: 'sensitive' } }] }, attrs)).toEqual({
      'url.full': 'https://REDACTED:REDACTED@api.example.com/x?sig=REDACTED&q=shoes#top',
      'url.query': 'password=REDACTED&x=1',
    });
    expect(await attrsAfter({ rules: [{ redact: { url_query: 'all' } }] }, attrs)).toEqual({
      'url.full': 'https://REDACTED:REDACTED@api.example.com/x?sig=REDACTED&q=REDACTED#top',
      'url.query': 'password=REDACTED&x=REDACTED',
    });
  });
});

describe('template', () => {
  it('templates span names and URL paths; original_to keeps the original', async () => {
    const h = harness({
      rules: [
        { scope: 'span_name', template: { original_to: 'span.name.original' } },
        { template: { keys: ['url.path'], patterns: [{ pattern: 'sku-[a-z0-9]+', placeholder: '{sku}' }] } },
      ],
    });
    const out = readSpans(
      await h.run(
        one(
          { 'url.path': '/users/123/orders/9f8e7d6c5b4a39281706f5e4d3c2b1a0', 'url.full': 'https://x/users/123' },
          'GET /users/123/orders/7d444840-9dc0-11d1-b245-5ffdce74fad2',
        ).concat(one({ 'url.path': '/shop/sku-ab12/v2/reviews?x=1' }, 'GET /health')),
      ),
    ).spans;
    expect(out[0]).toEqual({
      name: 'GET /users/{id}/orders/{id}',
      attributes: {
        'url.path': '/users/{id}/orders/{id}',
        'url.full': 'https://x/users/123',
        'span.name.original': 'GET /users/123/orders/7d444840-9dc0-11d1-b245-5ffdce74fad2',
      },
    });
    expect(out[1]).toEqual({ name: 'GET /health', attributes: { 'url.path': '/shop/{sku}/v2/reviews?x=1' } });
  });
});

describe('truncate', () => {
  it('cuts long values (strings, array elements) without splitting surrogate pairs', async () => {
    const a = await attrsAfter({ rules: [{ truncate: { max_length: 5 } }] }, { s: 'abcdefgh', e: 'abcd😀xyz', arr: ['123456', 'ok'], n: 1234567 });
    expect(a).toEqual({ s: 'abcde', e: 'abcd', arr: ['12345', 'ok'], n: 1234567 });
  });

  it('caps the attribute count, keeping priority keys, and counts the dropped ones', async () => {
    const h = harness({ rules: [{ truncate: { max_attributes: 3, priority_keys: ['z', 'http.route'] } }] });
    const out = readSpans(await h.run(one({ a: 1, b: 2, c: 3, 'http.route': '/r', z: 9 }))).spans[0];
    expect(out.attributes).toEqual({ a: 1, 'http.route': '/r', z: 9 });
    expect(out.droppedAttributesCount).toBe(2);
  });
});

describe('cardinality_limit', () => {
  it('collapses new values past the limit to _OTHER per window, counted per key', async () => {
    const h = harness({ rules: [{ cardinality_limit: { keys: ['user.tier', 'http.route'], max_values: 2, window: '1m' } }] });
    const seq = ['gold', 'silver', 'gold', 'bronze', 'silver', 'iron'];
    const got: string[] = [];
    for (const v of seq) got.push(readSpans(await h.run(one({ 'user.tier': v }))).spans[0].attributes['user.tier'] as string);
    expect(got).toEqual(['gold', 'silver', 'gold', '_OTHER', 'silver', '_OTHER']);
    expect(await h.telemetry.total('otelcol_processor_normalize_values_collapsed_total', { key: 'user.tier' })).toBe(2);
    h.clock.advance(60_000);
    expect(readSpans(await h.run(one({ 'user.tier': 'iron' }))).spans[0].attributes['user.tier']).toBe('iron');
    const text = await h.telemetry.metricsText();
    expect(text).not.toContain('bronze');
    expect(text).not.toContain('iron');
  });
});

describe('enrich_from_env (resource)', () => {
  const env = {
    OTEL_SERVICE_NAME: 'checkout',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=pay%20ments,bad',
    K8S_POD_NAME: 'checkout-7d9f-abc',
    K8S_NAMESPACE_NAME: 'shop',
    K8S_NODE_NAME: 'node-1',
    K8S_POD_UID: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  };

  it('adds attributes without overwriting; unknown_service counts as unset', async () => {
    const h = harness({ rules: [{ enrich_from_env: {} }] }, { env });
    const input = spansFor([cleanSpan, cleanSpan], { 'service.name': 'unknown_service:node', 'deployment.environment': 'dev' });
    const out = await h.run(input);
    const r = readSpans(out);
    expect(r.resources).toEqual([
      {
        'service.name': 'checkout',
        'deployment.environment': 'dev',
        'k8s.pod.name': 'checkout-7d9f-abc',
        'k8s.pod.uid': '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
        'k8s.namespace.name': 'shop',
        'k8s.node.name': 'node-1',
        team: 'pay ments',
      },
    ]);
    // One new ResourceRef shared by both spans; span bytes untouched.
    expect(out[0].scope).toBe(out[1].scope);
    expect(out[0].scope.resource.serviceName()).toBe('checkout');
    expect(out[0].buf).toBe(input[0].buf);
    // Other header fields (schema_url) survive.
    expect(Buffer.from(out[0].scope.resource.header).includes(Buffer.from('https://opentelemetry.io/schemas/1.9.0'))).toBe(true);
  });

  it('override: true overwrites', async () => {
    const h = harness({ rules: [{ enrich_from_env: { override: true, kubernetes: false } }] }, { env });
    const r = readSpans(await h.run(spansFor([cleanSpan], { 'service.name': 'legacy', 'deployment.environment': 'dev' })));
    expect(r.resources[0]).toEqual({ 'service.name': 'checkout', 'deployment.environment': 'prod', team: 'pay ments' });
  });

  it('resource-scoped rules run once per resource', async () => {
    const h = harness({ rules: [{ scope: 'resource', rename: { keys: { Env: 'deployment.environment' } } }] });
    await h.run(spansFor([cleanSpan, cleanSpan, cleanSpan], { 'service.name': 's', Env: 'prod' }));
    expect(await h.telemetry.total('otelcol_processor_normalize_spans_changed_total')).toBe(1);
    expect(await h.telemetry.total('otelcol_processor_normalize_resources_changed_total')).toBe(1);
  });
});

describe('filters', () => {
  it('by service name, span kind and span-name pattern', async () => {
    const rules = [
      { where: { services: ['shop-api'] }, set: { key: 'by.service', value: true } },
      { where: { span_kinds: ['client'] }, set: { key: 'by.kind', value: true } },
      { where: { span_name_pattern: '(?i)^get ' }, set: { key: 'by.name', value: true } },
    ];
    const h = harness({ rules });
    const out = readSpans(
      await h.run(
        spansFor([
          { name: 'get /a', kind: KIND_CLIENT, attributes: {} },
          { name: 'POST /a', kind: KIND_SERVER, attributes: {} },
        ]).concat(spansFor([{ name: 'GET /b', kind: KIND_SERVER, attributes: {} }], { 'service.name': 'other' })),
      ),
    ).spans;
    expect(out.map((s) => s.attributes)).toEqual([{ 'by.service': true, 'by.kind': true, 'by.name': true }, { 'by.service': true }, { 'by.name': true }]);
  });
});

describe('config validation', () => {
  const v = (config: unknown) => validateNormalize(withDefaults(NormalizeConfig, config));

  it('reports bad regexes, missing operations and impossible rules with paths', () => {
    const problems = v({
      rules: [
        { delete: { keys: ['a'] } },
        {},
        { rename: { keys: { a: 'b' } }, delete: { keys: ['c'] } },
        { redact: { key_pattern: '([a-z' } },
        { where: { span_name_pattern: '(' }, set: { key: 'k', value: 1 } },
        { delete: { key_pattern: 'foo$bar' } },
        { set: { key: 'k' } },
        { scope: 'span_name', rename: { keys: { a: 'b' } } },
        { redact: { value_patterns: ['x*'] } },
        { truncate: {} },
      ],
    });
    const at = (...path: Array<string | number>) => problems.filter((p) => JSON.stringify(p.path) === JSON.stringify(path)).map((p) => p.message);
    expect(at('rules', 1)[0]).toMatch(/no operation/);
    expect(at('rules', 2)[0]).toMatch(/2 operations \(rename, delete\)/);
    expect(at('rules', 3, 'redact', 'key_pattern')[0]).toMatch(/does not compile/);
    expect(at('rules', 4, 'where', 'span_name_pattern')[0]).toMatch(/does not compile/);
    expect(at('rules', 5, 'delete', 'key_pattern')[0]).toMatch(/never match/);
    expect(at('rules', 6, 'set')[0]).toMatch(/value or copy_from/);
    expect(at('rules', 7, 'scope')[0]).toMatch(/does not apply to scope span_name/);
    expect(at('rules', 8, 'redact', 'value_patterns', 0)[0]).toMatch(/empty string/);
    expect(at('rules', 9, 'truncate')[0]).toMatch(/max_length or max_attributes/);
    expect(at('rules', 0)).toEqual([]);
  });

  it('reports keys that earlier rules make impossible to match', () => {
    const problems = v({
      preset: 'recommended',
      rules: [{ key_style: { style: 'lowercase' } }, { delete: { keys: ['http.method', 'Env', 'ok'] } }],
    });
    expect(problems).toEqual([
      { path: ['rules', 1, 'delete', 'keys', 0], message: expect.stringMatching(/"http.method" can never match: rule preset.semconv/) },
      { path: ['rules', 1, 'delete', 'keys', 1], message: expect.stringMatching(/"Env" can never match: rule 0 rewrites keys to lowercase/) },
    ]);
  });

  it('the recommended preset alone is valid', () => {
    expect(v({ preset: 'recommended' })).toEqual([]);
    expect(neverMatches('^a|^b$')).toBe(false);
    expect(neverMatches('a^b')).toBe(true);
  });
});

describe('factory and lifecycle', () => {
  it('is registered and runs the component lifecycle', async () => {
    expect(processorFactories).toContain(normalizeProcessorFactory);
    expect(normalizeProcessorFactory.type).toBe('normalize');
    const sink = new SinkConsumer();
    const p = normalizeProcessorFactory.create(
      { id: 'normalize/x', logger: silentLogger(), telemetry: new Telemetry(), clock: new FakeClock() },
      withDefaults(NormalizeConfig, { preset: 'recommended' }),
      sink,
    );
    expect(p.mutatesData).toBe(true);
    await p.start();
    await p.consume(spansFor([httpClientSpan]));
    expect(sink.spanCount).toBe(1);
    await p.shutdown();
    await p.shutdown();
  });

  it('processes a request as scanned from the wire', () => {
    expect(requestFor([cleanSpan]).length).toBeGreaterThan(0);
  });
});
