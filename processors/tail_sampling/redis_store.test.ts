import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_REDIS, HAVE_REDIS_CLI, RedisCluster, TestRedis, DelayProxy } from '../../test/redis.js';
import { RedisDecisionStore } from './redis_store.js';
import { DecisionStoreError } from './decision_store.js';
import { withDefaults } from '../../config/defaults.js';
import { TailSamplingConfigSchema, type TailSamplingConfig } from './config.js';

const cfg = (redis: Record<string, unknown>) =>
  (withDefaults(TailSamplingConfigSchema, { policies: [{ name: 'a', type: 'always_sample' }], shared_decisions: { redis } }) as TailSamplingConfig).shared_decisions!.redis;

describe.skipIf(!HAVE_REDIS)('RedisDecisionStore against redis-server', () => {
  let redis: TestRedis;
  const stores: RedisDecisionStore[] = [];
  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await redis.stop();
  });
  const open = (extra: Record<string, unknown> = {}) => {
    const s = RedisDecisionStore.create(cfg({ endpoint: redis.url, key_prefix: 't1:', ...extra }));
    stores.push(s);
    return s;
  };

  it('writes keeps once (NX) with a TTL and reads many in one round trip', async () => {
    const s = open();
    const ids = Array.from({ length: 2500 }, (_, i) => i.toString(16).padStart(32, '0'));
    await s.publish([{ traceId: ids[0], value: 'first' }], 60);
    await s.publish(
      ids.slice(0, 1200).map((traceId) => ({ traceId, value: 'second' })),
      60,
    );
    expect(s.lastRoundTrips).toBe(1);
    const got = await s.read(ids);
    expect(s.lastRoundTrips).toBe(1);
    expect(got[0]).toBe('first'); // NX: the first keeper's value stays
    expect(got[1]).toBe('second');
    expect(got.slice(1200).every((v) => v === null)).toBe(true);
    const ttl = Number((await redis.command('TTL', 't1:' + ids[5])).slice(1));
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(await redis.command('DBSIZE')).toBe(':1200');
  });

  it('fails fast (typed) while the server is down, and works again once it is back, without a new client', async () => {
    const s = open();
    await s.read(['aa']); // connected
    await redis.stop();
    const err = await s.read(['aa']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DecisionStoreError);
    expect(['connection', 'timeout']).toContain((err as DecisionStoreError).kind);
    await redis.resume();
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await s.read(['aa']).then(
        () => true,
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ok).toBe(true);
  });

  it('a slow server: a command fails as a timeout after `timeout`', async () => {
    const proxy = await DelayProxy.start(redis.port);
    try {
      const s = open({ endpoint: `redis://127.0.0.1:${proxy.port}`, timeout: '200ms' });
      await s.read(['bb']);
      proxy.delayMs = 1000;
      const t0 = performance.now();
      const err = await s.read(['bb']).catch((e: unknown) => e);
      expect((err as DecisionStoreError).kind).toBe('timeout');
      expect(performance.now() - t0).toBeLessThan(900);
    } finally {
      await proxy.close();
    }
  });

  it('a password from password_file: the right one works, a wrong one is a typed refusal', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const locked = await TestRedis.start(['--requirepass', 's3cret']);
    try {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-'));
      fs.writeFileSync(path.join(dir, 'good'), 's3cret\n');
      fs.writeFileSync(path.join(dir, 'bad'), 'wrong\n');
      const good = RedisDecisionStore.create(cfg({ endpoint: locked.url, password_file: path.join(dir, 'good') }));
      const bad = RedisDecisionStore.create(cfg({ endpoint: locked.url, password_file: path.join(dir, 'bad'), timeout: '300ms' }));
      stores.push(good, bad);
      expect(await good.read(['dd'])).toEqual([null]);
      const err = await bad.read(['dd']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DecisionStoreError);
      expect(String((err as Error).message)).not.toContain('wrong');
    } finally {
      await locked.stop();
    }
  });

  it('a missing password_file fails at creation with the key named', () => {
    expect(() => RedisDecisionStore.create(cfg({ endpoint: redis.url, password_file: '/nonexistent/pw' }))).toThrow(/shared_decisions\.redis\.password_file: cannot read/);
  });
});

const ids = (n: number) => Array.from({ length: n }, () => randomBytes(16).toString('hex'));

/** fn's result once it succeeds (tried every 100 ms for up to 5 s). */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The `cluster:` path against a real 3-primary Redis Cluster (redis-server and redis-cli from PATH). */
describe('RedisDecisionStore against a 3-primary Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  const stores: RedisDecisionStore[] = [];
  beforeAll(async () => {
    if (HAVE_REDIS_CLI) cluster = await RedisCluster.start(3);
  }, 30_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    await cluster?.stop();
  });
  // A generous timeout by default: the first batch also connects to every node (slow on a loaded test machine).
  const open = (extra: Record<string, unknown> = {}) => {
    const s = RedisDecisionStore.create(cfg({ cluster: cluster!.seeds, key_prefix: 'c1:', timeout: '5s', ...extra }));
    stores.push(s);
    return s;
  };

  it('keeps written by one store are read back by another across all slots, NX, with the TTL and the key prefix', async (ctx) => {
    if (cluster === undefined) ctx.skip('redis-server or redis-cli not on PATH');
    const writer = open();
    const reader = open();
    const kept = ids(1500);
    const unknown = ids(500);
    await writer.publish([{ traceId: kept[0], value: 'first' }], 60);
    await writer.publish(
      kept.map((traceId) => ({ traceId, value: 'second' })),
      60,
    );
    expect(writer.lastRoundTrips).toBe(3);
    const got = await reader.read([...kept, ...unknown]);
    expect(reader.lastRoundTrips).toBe(3);
    expect(got[0]).toBe('first'); // NX: the first keeper's value stays
    expect(got.slice(1, 1500).every((v) => v === 'second')).toBe(true);
    expect(got.slice(1500).every((v) => v === null)).toBe(true);
    // Spread over all three primaries, each key under the prefix, with the TTL.
    const sizes = await Promise.all(cluster!.nodes.map(async (n) => Number((await n.command('DBSIZE')).slice(1))));
    expect(sizes.every((n) => n > 300)).toBe(true);
    expect(sizes.reduce((a, b) => a + b)).toBe(1500);
    for (const n of cluster!.nodes) {
      const key = await n.command('RANDOMKEY');
      expect(key).toMatch(/^c1:[0-9a-f]{32}$/);
      const ttl = Number((await n.command('TTL', key)).slice(1));
      expect(ttl).toBeGreaterThan(50);
      expect(ttl).toBeLessThanOrEqual(60);
    }
    // Another prefix is another namespace.
    expect((await open({ key_prefix: 'c2:' }).read(kept.slice(0, 50))).every((v) => v === null)).toBe(true);
  });

  it('one primary down: reads and writes fail fast (typed) every time, so the sidecar decides alone without stalling; back up, they work again', async (ctx) => {
    if (cluster === undefined) ctx.skip('redis-server or redis-cli not on PATH');
    const s = open({ timeout: '300ms' });
    const some = ids(300);
    await eventually(() =>
      s.publish(
        some.map((traceId) => ({ traceId, value: 'v' })),
        60,
      ),
    );
    expect((await eventually(() => s.read(some))).every((v) => v === 'v')).toBe(true);
    const down = cluster!.nodes[2];
    await down.stop();
    for (let i = 0; i < 3; i++) {
      for (const op of [() => s.read(some), () => s.publish(some.map((traceId) => ({ traceId, value: 'w' })), 60)]) {
        const t0 = performance.now();
        const err = await op().catch((e: unknown) => e);
        // Bounded by `timeout` (ioredis alone retried for 1.5-2 s here).
        expect(performance.now() - t0).toBeLessThan(1000);
        expect(err).toBeInstanceOf(DecisionStoreError);
        expect(['connection', 'timeout']).toContain((err as DecisionStoreError).kind);
      }
    }
    await down.resume(); // same port and node config: it rejoins with its slots (empty: no persistence)
    const got = await eventually(() => s.read(some));
    expect(got.filter((v) => v === 'v').length).toBeGreaterThan(100); // the keeps on the two nodes that stayed up
  });
});

describe('loading', () => {
  it('the bundle keeps the Redis client in its own chunk: only a config with shared_decisions loads it', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const dist = path.resolve(import.meta.dirname, '..', '..', 'dist', 'collector');
    const main = fs.readFileSync(path.join(dist, 'sidecar.mjs'), 'utf8');
    const chunks = fs.readdirSync(path.join(dist, 'chunks')).filter((f) => f.endsWith('.mjs'));
    const withClient = chunks.filter((f) => fs.readFileSync(path.join(dist, 'chunks', f), 'utf8').includes('enableOfflineQueue'));
    expect(main).not.toContain('enableOfflineQueue');
    expect(withClient).toHaveLength(1);
    expect(withClient[0]).toMatch(/^redis_store-/);
    // The processor imports it in start(), and only with shared_decisions.
    expect(main).toMatch(/import\("\.\/chunks\/redis_store-[A-Z0-9]+\.mjs"\)/);
  });
});
