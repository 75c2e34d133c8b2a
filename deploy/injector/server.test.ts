/**
 * The injector over real HTTPS with self-signed certificates made by openssl:
 * an AdmissionReview round trip, the error answers, and certificate rotation
 * (files replaced the way the kubelet does; the next connection gets the new
 * certificate; a half-rotated pair is ignored).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { loadInjectorConfig } from './config.js';
import { startInjectorServer, type InjectorServer } from './server.js';

const haveOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
if (!haveOpenssl) console.warn('server.test.ts: openssl not found; skipping the HTTPS round-trip and certificate rotation tests');

const testdata = join(import.meta.dirname, 'testdata');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  fingerprint: string;
}

function makeCert(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8'), fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

describe.skipIf(!haveOpenssl)('injector over HTTPS', () => {
  let dir: string;
  let server: InjectorServer;
  let port: number;
  let a: ReturnType<typeof makeCert>;
  let b: ReturnType<typeof makeCert>;
  let generation = 0;

  /**
   * Publishes a pair the way the kubelet updates a Secret volume: a new
   * timestamped directory, then an atomic rename of the `..data` symlink;
   * tls.crt and tls.key are symlinks through `..data`.
   */
  function publish(cert: string, key: string): void {
    const gen = `..gen${++generation}`;
    mkdirSync(join(dir, 'tls', gen));
    writeFileSync(join(dir, 'tls', gen, 'tls.crt'), cert);
    writeFileSync(join(dir, 'tls', gen, 'tls.key'), key);
    symlinkSync(gen, join(dir, 'tls', '..data_tmp'));
    renameSync(join(dir, 'tls', '..data_tmp'), join(dir, 'tls', '..data'));
  }

  function call(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}, ca = a.cert): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method, path, ca, agent: false, headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers },
        (res) => {
          const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? '';
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), fingerprint }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'injector-tls-'));
    a = makeCert(dir, 'cert-a');
    b = makeCert(dir, 'cert-b');
    mkdirSync(join(dir, 'tls'));
    publish(a.cert, a.key);
    symlinkSync('..data/tls.crt', join(dir, 'tls', 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls', 'tls.key'));
    const cfg = loadInjectorConfig(
      ['--tls-cert-file', join(dir, 'tls', 'tls.crt'), '--tls-key-file', join(dir, 'tls', 'tls.key'), '--kubernetes-version', '1.30', '--tls-reload-interval', '1h'],
      {},
    );
    server = await startInjectorServer(cfg, silentLogger(), '127.0.0.1:0');
    port = server.address().port;
  });

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers an AdmissionReview with the expected patch', async () => {
    const body = readFileSync(join(testdata, 'annotated-true.json'));
    const r = await call('POST', '/mutate', body);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    const review = JSON.parse(r.body);
    const uid = JSON.parse(body.toString()).request.uid;
    expect(review.response).toMatchObject({ uid, allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(review.response.patch, 'base64').toString())).toEqual(JSON.parse(readFileSync(join(testdata, 'annotated-true.patch.json'), 'utf8')));
    expect(r.fingerprint).toBe(a.fingerprint);
  });

  it('answers an opted-out pod with allowed and no patch', async () => {
    const r = await call('POST', '/mutate', readFileSync(join(testdata, 'not-annotated.json')));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).response.patch).toBeUndefined();
  });

  it('serves /healthz', async () => {
    const r = await call('GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
  });

  it.each([
    ['bad JSON', 'POST', '/mutate', '{nope', {}, 400, /not valid JSON/],
    ['not a review', 'POST', '/mutate', readFileSync(join(testdata, 'not-a-review.json'), 'utf8'), {}, 400, /not an AdmissionReview/],
    ['wrong content type', 'POST', '/mutate', 'hello', { 'content-type': 'text/plain' }, 415, /content type text\/plain/],
    ['wrong method', 'GET', '/mutate', undefined, {}, 405, /use POST/],
    ['wrong path', 'POST', '/validate', '{}', {}, 404, /the webhook path is \/mutate/],
  ] as const)('%s', async (_n, method, path, body, headers, status, message) => {
    const r = await call(method, path, body, headers as Record<string, string>);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body).error).toMatch(message);
    if (status === 405) expect(r.headers.allow).toBe('POST');
  });

  it('refuses a body over the limit with 413', async () => {
    const r = await call('POST', '/mutate', Buffer.alloc(9 * 1024 * 1024, 0x20));
    expect(r.status).toBe(413);
  });

  it('keeps serving after errors', async () => {
    const r = await call('POST', '/mutate', readFileSync(join(testdata, 'no-volumes.json')));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).response.patchType).toBe('JSONPatch');
  });

  it('ignores a half-rotated pair, then serves the rotated certificate to the next connection', async () => {
    // Unchanged files: nothing to do.
    expect(await server.reloadCertificates()).toBe(false);
    // Certificate B with key A: not a valid pair; the old certificate stays.
    publish(b.cert, a.key);
    expect(await server.reloadCertificates()).toBe(false);
    expect((await call('GET', '/healthz')).fingerprint).toBe(a.fingerprint);
    // The complete new pair.
    publish(b.cert, b.key);
    expect(await server.reloadCertificates()).toBe(true);
    const r = await call('GET', '/healthz', undefined, {}, b.cert);
    expect(r.status).toBe(200);
    expect(r.fingerprint).toBe(b.fingerprint);
    expect(r.fingerprint).not.toBe(a.fingerprint);
    // A client that trusts only the old certificate is now refused by TLS verification.
    await expect(call('GET', '/healthz', undefined, {}, a.cert)).rejects.toThrow();
    // And admission still works over the new certificate.
    const m = await call('POST', '/mutate', readFileSync(join(testdata, 'annotated-true.json')), {}, b.cert);
    expect(JSON.parse(m.body).response.allowed).toBe(true);
  });

  it('refuses to start with a key that does not match the certificate', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'tls.crt'), a.cert);
    writeFileSync(join(bad, 'tls.key'), b.key);
    const cfg = loadInjectorConfig(['--tls-cert-file', join(bad, 'tls.crt'), '--tls-key-file', join(bad, 'tls.key')], {});
    await expect(startInjectorServer(cfg, silentLogger(), '127.0.0.1:0')).rejects.toThrow();
    unlinkSync(join(bad, 'tls.key'));
    await expect(startInjectorServer(cfg, silentLogger(), '127.0.0.1:0')).rejects.toThrow(/ENOENT/);
  });
});
