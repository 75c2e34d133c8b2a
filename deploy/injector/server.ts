/**
 * HTTPS plumbing for the injector: POST /mutate (AdmissionReview v1),
 * GET /healthz, certificate reload. All decisions are in mutate.ts.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { InjectorConfig } from './config.js';
import { answerReview, compileSettings, type SidecarSettings } from './mutate.js';
import { CertificateFiles } from './tls.js';

/** Largest request body accepted (a pod with a big spec plus the review envelope fits well below). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface InjectorServer {
  readonly server: Server;
  address(): AddressInfo;
  /** Re-reads the certificate files now; true when a new certificate is being served. */
  reloadCertificates(): Promise<boolean>;
  close(): Promise<void>;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new Error(`listen address "${addr}" is not host:port`);
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`listen address "${addr}" has an invalid port`);
  return { host, port };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function handleMutate(req: IncomingMessage, res: ServerResponse, settings: SidecarSettings, logger: Logger): void {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: `method ${req.method} not allowed on /mutate; use POST` }, { allow: 'POST' });
    req.resume();
    return;
  }
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    sendJson(res, 415, { error: `content type ${type} not supported; send application/json` });
    req.resume();
    return;
  }
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) {
    sendJson(res, 413, { error: `request body over ${MAX_BODY_BYTES} bytes` }, { connection: 'close' });
    req.destroy();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      tooLarge = true;
      sendJson(res, 413, { error: `request body over ${MAX_BODY_BYTES} bytes` }, { connection: 'close' });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) return;
    const answer = answerReview(Buffer.concat(chunks, size), settings);
    if (answer.status !== 200) {
      logger.warn({ status: answer.status, error: answer.body.error }, 'rejected malformed admission request');
    } else if (answer.result) {
      const r = answer.result;
      const fields = { uid: answer.uid, namespace: answer.namespace, pod: answer.podName, reason: r.reason, configMap: r.configMap };
      if (r.warnings.length > 0) logger.warn({ ...fields, warnings: r.warnings }, 'sidecar not injected');
      else if (r.patch) logger.info(fields, 'sidecar injected');
      else logger.debug(fields, 'sidecar not injected');
    }
    sendJson(res, answer.status, answer.body);
  });
  req.on('error', () => {
    // Client went away; nothing to answer.
  });
}

/** Starts the webhook server. The listen address comes from the config unless `listen` overrides it (tests). */
export async function startInjectorServer(cfg: InjectorConfig, logger: Logger, listen?: string): Promise<InjectorServer> {
  const settings = compileSettings(cfg);
  const certs = new CertificateFiles(cfg.tls_cert_file, cfg.tls_key_file, logger);
  const server = createServer({ ...certs.options(), minVersion: 'TLSv1.2' }, (req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/mutate') return handleMutate(req, res, settings, logger);
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
        return;
      }
      sendJson(res, 404, { error: `no handler for ${path}; the webhook path is /mutate` });
      req.resume();
    } catch (err) {
      logger.error({ err }, 'admission handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 30_000;

  const reload = async (): Promise<boolean> => {
    const next = await certs.check();
    if (!next) return false;
    server.setSecureContext(next);
    logger.info({ certFile: certs.certFile }, 'TLS certificate reloaded');
    return true;
  };
  let reloading = false;
  const timer = setInterval(() => {
    if (reloading) return;
    reloading = true;
    reload()
      .catch((err) => logger.error({ err }, 'TLS reload failed'))
      .finally(() => {
        reloading = false;
      });
  }, cfg.tls_reload_interval);
  timer.unref();

  const { host, port } = splitHostPort(listen ?? cfg.listen_address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  logger.info({ address: server.address(), native: settings.native, image: cfg.image }, 'sidecar injector listening');

  let closed: Promise<void> | null = null;
  return {
    server,
    address: () => server.address() as AddressInfo,
    reloadCertificates: reload,
    close() {
      if (closed) return closed;
      clearInterval(timer);
      closed = new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
