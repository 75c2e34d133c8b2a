/**
 * The shared decision store on a server that speaks the Redis protocol
 * (Redis, Valkey, Redis Cluster), through ioredis. Imported only when
 * `shared_decisions` is configured (a dynamic import in the processor's
 * start), so a sidecar without it never loads the client.
 *
 * - Writes: one pipeline per batch, `SET key value EX ttl NX` per keep.
 * - Reads: `MGET` of up to 1000 keys per command, pipelined (one round trip).
 *   On a cluster, keys of one batch live on many nodes (MGET cannot cross
 *   slots): one `GET` per key, auto-pipelined by ioredis into one pipeline per
 *   node.
 * - Bounded: every command fails after `timeout` (commandTimeout), nothing is
 *   queued while disconnected (enableOfflineQueue: false: a command fails at
 *   once), no command is retried (maxRetriesPerRequest: 0; on a cluster,
 *   where ioredis still retries a command whose node went away, the whole
 *   batch is bounded by `timeout`); the client reconnects by itself in the
 *   background.
 * - Secrets: the password is read from password_file at start and never
 *   logged; the endpoint may not carry one (config validation).
 */
import fs from 'node:fs';
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { TailSamplingConfig } from './config.js';
import { parseDuration } from '../../config/duration.js';
import { DecisionStoreError, type DecisionStore, type KeepWrite, type StoreErrorKind } from './decision_store.js';

type RedisCfg = NonNullable<TailSamplingConfig['shared_decisions']>['redis'];

const MGET_CHUNK = 1000;

function readSecret(key: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(`shared_decisions.redis.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function kindOf(err: unknown): StoreErrorKind {
  const e = err as { name?: string; message?: string; code?: string };
  const msg = e?.message ?? '';
  if (/timed? ?out/i.test(msg)) return 'timeout';
  if (e?.name === 'ReplyError') return 'refused';
  if (/writeable|closed|ECONN|EPIPE|ENOTFOUND|EHOSTUNREACH|Connection|connect/i.test(msg) || (e?.code ?? '').startsWith('E')) return 'connection';
  return 'other';
}

function wrap(err: unknown): DecisionStoreError {
  if (err instanceof DecisionStoreError) return err;
  return new DecisionStoreError(err instanceof Error ? err.message : String(err), kindOf(err));
}

export class RedisDecisionStore implements DecisionStore {
  lastRoundTrips = 0;
  private readonly prefix: string;

  private constructor(
    private readonly client: Redis | Cluster,
    private readonly cluster: boolean,
    prefix: string,
    private readonly timeoutMs: number,
  ) {
    this.prefix = prefix;
    // Failures reach the protocol through the commands; the client's own error events would only repeat them.
    client.on('error', () => undefined);
  }

  /** Builds the client (it connects in the background; nothing here waits for the server). */
  static create(cfg: RedisCfg): RedisDecisionStore {
    const timeout = parseDuration(cfg.timeout);
    const password = cfg.password_file !== '' ? readSecret('password_file', cfg.password_file) : undefined;
    const username = cfg.username !== '' ? cfg.username : undefined;
    let tls: ConnectionOptions | undefined;
    const useTls = cfg.endpoint !== undefined ? cfg.endpoint.startsWith('rediss://') : cfg.tls.enabled;
    if (useTls) {
      tls = { rejectUnauthorized: !cfg.tls.insecure_skip_verify };
      if (cfg.tls.ca_file !== '') tls.ca = readSecret('tls.ca_file', cfg.tls.ca_file);
    }
    const common: RedisOptions = {
      username,
      password,
      tls,
      commandTimeout: timeout,
      connectTimeout: Math.max(timeout, 1000),
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      autoResubscribe: false,
    };
    if (cfg.endpoint !== undefined) {
      const u = new URL(cfg.endpoint);
      const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
      if (tls !== undefined) tls.servername = u.hostname;
      const client = new Redis({
        ...common,
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port !== '' ? Number(u.port) : 6379,
        db: Number.isInteger(db) ? db : 0,
        retryStrategy: (times) => Math.min(times * 200, 2000),
      });
      return new RedisDecisionStore(client, false, cfg.key_prefix, timeout);
    }
    const nodes = (cfg.cluster ?? []).map((hp) => {
      const i = hp.lastIndexOf(':');
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    });
    const client = new Cluster(nodes, {
      redisOptions: common,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      slotsRefreshTimeout: Math.max(timeout, 1000),
      clusterRetryStrategy: (times) => Math.min(times * 200, 2000),
    });
    return new RedisDecisionStore(client, true, cfg.key_prefix, timeout);
  }

  /**
   * While (re)connecting, waits for the connection up to `timeout` (a command
   * would fail at once without the offline queue): the first ticks after start
   * find the store ready instead of counting a failure.
   */
  private async whenReady(): Promise<void> {
    const c = this.client;
    if (c.status === 'ready' || c.status === 'end') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        c.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, this.timeoutMs);
      c.once('ready', done);
    });
  }

  async publish(keeps: readonly KeepWrite[], ttlSec: number): Promise<void> {
    try {
      await this.whenReady();
      if (this.cluster) {
        await this.deadline(Promise.all(keeps.map((k) => this.client.set(this.prefix + k.traceId, k.value, 'EX', ttlSec, 'NX'))));
        this.lastRoundTrips = this.nodeCount(keeps.length);
        return;
      }
      const p = this.client.pipeline();
      for (const k of keeps) p.set(this.prefix + k.traceId, k.value, 'EX', ttlSec, 'NX');
      const res = await p.exec();
      this.lastRoundTrips = 1;
      const failed = res?.find((r) => r[0] !== null);
      if (failed !== undefined) throw failed[0];
    } catch (err) {
      throw wrap(err);
    }
  }

  async read(traceIds: readonly string[]): Promise<Array<string | null>> {
    try {
      await this.whenReady();
      const keys = traceIds.map((id) => this.prefix + id);
      if (this.cluster) {
        const values = await this.deadline(Promise.all(keys.map((k) => this.client.get(k))));
        this.lastRoundTrips = this.nodeCount(keys.length);
        return values;
      }
      if (keys.length <= MGET_CHUNK) {
        const v = await this.client.mget(keys);
        this.lastRoundTrips = 1;
        return v;
      }
      const p = this.client.pipeline();
      for (let i = 0; i < keys.length; i += MGET_CHUNK) p.mget(keys.slice(i, i + MGET_CHUNK));
      const res = (await p.exec()) ?? [];
      this.lastRoundTrips = 1;
      const out: Array<string | null> = [];
      for (const [err, v] of res) {
        if (err !== null) throw err;
        out.push(...(v as Array<string | null>));
      }
      return out;
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * Rejects as a timeout once `timeout` has passed. On a cluster, a command
   * whose node connection closed is retried by ioredis on another node (up to
   * maxRedirections, with slot refreshes between), each try with its own
   * commandTimeout: with a primary down a batch took 1.5-2 s at a 300 ms
   * timeout. (The retries end by themselves in the background.)
   */
  private deadline<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DecisionStoreError(`Command timed out after ${this.timeoutMs} ms`, 'timeout')), this.timeoutMs);
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  private nodeCount(keys: number): number {
    const n = (this.client as Cluster).nodes('master').length;
    return Math.max(1, Math.min(keys, n));
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
