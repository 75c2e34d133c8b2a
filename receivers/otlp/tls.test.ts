/**
 * TLS, mutual TLS and bearer-token auth on both receivers, with certificates
 * made by the test, mounted the way the kubelet mounts a Secret volume; and
 * rotation through the `..data` symlink swap while clients keep sending.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import type tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { OtlpReceiver } from './receiver.js';
import { OtlpReceiverSchema } from './config.js';
import { otlpReceiverFactory } from './index.js';
import { withDefaults } from '../../config/defaults.js';
import { SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock } from '../../collector/component.js';
import { requestBytes } from '../../test/otlp.js';
import { haveOpenssl, makeCa, makeSigned, type Pem } from '../../test/certs.js';

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const BODY = Buffer.from(requestBytes([{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' }]));

interface Reply {
  status: number;
  fingerprint: string;
}

describe.skipIf(!haveOpenssl)('receiver TLS, mTLS and auth', () => {
  let dir: string;
  let secret: string;
  let ca: Pem;
  let otherCa: Pem;
  let serverA: Pem;
  let serverB: Pem;
  let client: Pem;
  let stranger: Pem;
  let receiver: OtlpReceiver;
  const sink = new SinkConsumer();
  let generation = 0;

  /** Publishes files like the kubelet updates a Secret volume: a new `..genN` directory, then an atomic rename of `..data`. */
  function publish(files: Record<string, Buffer | string>): void {
    const gen = `..gen${++generation}`;
    mkdirSync(join(secret, gen));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(secret, gen, name), content);
    symlinkSync(gen, join(secret, '..data_tmp'));
    renameSync(join(secret, '..data_tmp'), join(secret, '..data'));
    for (const name of Object.keys(files)) if (!existsSync(join(secret, name))) symlinkSync(join('..data', name), join(secret, name));
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'otlp-tls-'));
    secret = join(dir, 'secret');
    mkdirSync(secret);
    ca = makeCa(dir, 'ca');
    otherCa = makeCa(dir, 'other-ca');
    serverA = makeSigned(dir, ca, 'server-a', 'server');
    serverB = makeSigned(dir, ca, 'server-b', 'server');
    client = makeSigned(dir, ca, 'client', 'client');
    stranger = makeSigned(dir, otherCa, 'stranger', 'client');
    publish({ 'tls.crt': serverA.cert, 'tls.key': serverA.key, 'ca.crt': ca.cert, token: 'first-token\n' });
    const tlsCfg = { cert_file: join(secret, 'tls.crt'), key_file: join(secret, 'tls.key'), client_ca_file: join(secret, 'ca.crt') };
    const auth = { bearer_token_file: join(secret, 'token') };
    const config = withDefaults(OtlpReceiverSchema, {
      protocols: { grpc: { endpoint: '127.0.0.1:0', tls: tlsCfg, auth }, http: { endpoint: '127.0.0.1:0', tls: tlsCfg, auth } },
    });
    expect(otlpReceiverFactory.validate!(config)).toEqual([]);
    receiver = new OtlpReceiver({ id: 'otlp', logger: silentLogger(), telemetry: new Telemetry(), clock: systemClock }, config, sink);
    await receiver.start();
  });

  afterAll(async () => {
    await receiver?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  function post(opts: { cert?: Pem; token?: string }): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { 'content-type': 'application/x-protobuf', 'content-length': BODY.length };
      if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
      const req = https.request(
        { host: '127.0.0.1', port: receiver.httpPort, method: 'POST', path: '/v1/traces', agent: false, ca: ca.cert, cert: opts.cert?.cert, key: opts.cert?.key, headers },
        (res) => {
          const fingerprint = (res.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '';
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
        },
      );
      req.on('error', reject);
      req.end(BODY);
    });
  }

  function grpcClient(cert?: Pem): grpc.Client {
    return new grpc.Client(`127.0.0.1:${receiver.grpcPort}`, grpc.credentials.createSsl(ca.cert, cert?.key ?? null, cert?.cert ?? null));
  }

  function grpcCall(c: grpc.Client, token: string | undefined): Promise<grpc.ServiceError | null> {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    const id = (b: Buffer) => b;
    return new Promise((resolve) => c.makeUnaryRequest(EXPORT, id, id, BODY, md, { deadline: Date.now() + 5000 }, (err) => resolve(err)));
  }

  it('serves OTLP/HTTP over TLS to a client with a certificate from the client CA and the token', async () => {
    const before = sink.spans.length;
    const r = await post({ cert: client, token: 'first-token' });
    expect(r.status).toBe(200);
    expect(r.fingerprint).toBe(serverA.fingerprint);
    expect(sink.spans.length).toBe(before + 1);
  });

  it('serves OTLP/gRPC over TLS to a client with a certificate and the token', async () => {
    const c = grpcClient(client);
    try {
      expect(await grpcCall(c, 'first-token')).toBeNull();
    } finally {
      c.close();
    }
  });

  it('refuses HTTP clients without a certificate or with one from another CA during the handshake', async () => {
    await expect(post({ token: 'first-token' })).rejects.toThrow();
    await expect(post({ cert: stranger, token: 'first-token' })).rejects.toThrow();
  });

  it('refuses gRPC clients without a certificate or with one from another CA', async () => {
    for (const cert of [undefined, stranger]) {
      const c = grpcClient(cert);
      try {
        const err = await grpcCall(c, 'first-token');
        expect(err?.code).toBe(grpc.status.UNAVAILABLE); // the connection never comes up
      } finally {
        c.close();
      }
    }
  });

  it('answers a missing or wrong bearer token with 401 / UNAUTHENTICATED, and takes nothing', async () => {
    const before = sink.spans.length;
    expect((await post({ cert: client })).status).toBe(401);
    expect((await post({ cert: client, token: 'first-tokeN' })).status).toBe(401);
    const c = grpcClient(client);
    try {
      expect((await grpcCall(c, undefined))?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await grpcCall(c, 'nope'))?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      c.close();
    }
    expect(sink.spans.length).toBe(before);
  });

  it('picks up a rotated certificate and token from a ..data swap while clients keep sending', async () => {
    const c = grpcClient(client);
    let token = 'first-token';
    let sending = true;
    const failures: string[] = [];
    let sent = 0;
    // Clients that keep sending through the swap: HTTP on a new connection each time, gRPC on one channel.
    const loop = (async () => {
      while (sending) {
        const [h, g] = await Promise.all([post({ cert: client, token }).catch((e: Error) => ({ status: -1, fingerprint: e.message })), grpcCall(c, token)]);
        if (h.status !== 200) failures.push(`http ${h.status} ${h.fingerprint}`);
        if (g !== null) failures.push(`grpc ${g.code} ${g.details}`);
        sent++;
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 100));
      // The new certificate first, the token unchanged: nothing may be refused meanwhile.
      publish({ 'tls.crt': serverB.cert, 'tls.key': serverB.key, 'ca.crt': ca.cert, token: 'first-token\n' });
      const deadline = Date.now() + 5000;
      while ((await post({ cert: client, token })).fingerprint !== serverB.fingerprint) {
        if (Date.now() > deadline) throw new Error('the rotated certificate was not picked up');
        await new Promise((r) => setTimeout(r, 20));
      }
      sending = false;
      await loop;
      expect(failures).toEqual([]);
      expect(sent).toBeGreaterThan(3);
      // Then the token: the old one is refused once the swap is seen, the new one taken.
      publish({ 'tls.crt': serverB.cert, 'tls.key': serverB.key, 'ca.crt': ca.cert, token: 'second-token\n' });
      const until = Date.now() + 5000;
      while ((await post({ cert: client, token: 'second-token' })).status !== 200) {
        if (Date.now() > until) throw new Error('the rotated token was not picked up');
        await new Promise((r) => setTimeout(r, 20));
      }
      token = 'second-token';
      expect((await post({ cert: client, token: 'first-token' })).status).toBe(401);
      expect(await grpcCall(c, 'second-token')).toBeNull();
      expect((await grpcCall(c, 'first-token'))?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      sending = false;
      c.close();
    }
  });

  it('refuses a config whose TLS or token file does not exist, naming the key', () => {
    const config = withDefaults(OtlpReceiverSchema, {
      protocols: { http: { endpoint: '127.0.0.1:0', tls: { cert_file: join(dir, 'missing.crt'), key_file: serverA.keyFile }, auth: { bearer_token_file: join(dir, 'missing-token') } } },
    });
    const problems = otlpReceiverFactory.validate!(config);
    expect(problems.map((p) => p.path.join('.'))).toEqual(['protocols.http.tls.cert_file', 'protocols.http.auth.bearer_token_file']);
    expect(problems[0].message).toContain('missing.crt');
  });
});
