/**
 * Test double for Timers driven by a FakeClock (collector/consumertest.ts).
 * No vitest import: usable from any test and compiled with the sources.
 */
import type { FakeClock } from '../../collector/consumertest.js';
import type { Timers } from './timers.js';

interface Pending {
  at: number;
  ms: number;
  resolve: (fired: boolean) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

export class FakeTimers implements Timers {
  readonly clock: FakeClock;
  private pending: Pending[] = [];

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const p: Pending = { at: this.clock.now() + Math.max(0, ms), ms, resolve, signal, onAbort: undefined };
      if (signal) {
        p.onAbort = () => {
          this.pending = this.pending.filter((x) => x !== p);
          resolve(false);
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.push(p);
    });
  }

  /** Durations (ms, as requested) of the sleeps now pending, in request order. */
  pendingDelays(): number[] {
    return this.pending.map((p) => p.ms);
  }

  /** Milliseconds from now to each pending wake-up. */
  pendingDue(): number[] {
    return this.pending.map((p) => p.at - this.clock.now());
  }

  /** Moves the clock forward by `ms`, firing due sleeps in time order and letting their effects run. */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    for (;;) {
      await flush();
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= target && (next === undefined || p.at < next.at)) next = p;
      if (next === undefined) break;
      this.pending = this.pending.filter((x) => x !== next);
      if (next.at > this.clock.now()) this.clock.t = next.at;
      if (next.signal && next.onAbort) next.signal.removeEventListener('abort', next.onAbort);
      next.resolve(true);
    }
    this.clock.t = target;
    await flush();
  }

  /** Waits (real event-loop turns) until `cond` holds; gives up after `limitMs` of real time. */
  async until(cond: () => boolean, limitMs = 10_000): Promise<void> {
    return waitFor(cond, limitMs);
  }
}

/** Polls `cond` on real event-loop turns until it holds; throws after `limitMs` of real time. */
export async function waitFor(cond: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (let i = 0; ; i++) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error('waitFor: condition not reached');
    if (i < 50) await new Promise<void>((r) => setImmediate(r));
    else await new Promise<void>((r) => setTimeout(r, 2));
  }
}

/**
 * Advances fake time in steps of `stepMs` while real I/O runs in between,
 * until `cond` holds (for retries that depend on a real network peer).
 */
export async function driveUntil(timers: FakeTimers, cond: () => boolean, stepMs = 5_000, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('driveUntil: condition not reached');
    await timers.advance(stepMs);
    await new Promise<void>((r) => setTimeout(r, 20));
  }
}

/**
 * Creates a self-signed certificate for 127.0.0.1/localhost with the openssl
 * CLI (node:crypto cannot make X.509 certificates). Returns undefined when
 * openssl is not available.
 */
export async function makeSelfSignedCert(dir: string): Promise<{ certFile: string; keyFile: string; cert: Buffer; key: Buffer } | undefined> {
  const { execFile } = await import('node:child_process');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const ok = await new Promise<boolean>((resolve) =>
    execFile(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      { timeout: 30_000 },
      (err) => resolve(!err),
    ),
  );
  if (!ok) return undefined;
  return { certFile, keyFile, cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
}
