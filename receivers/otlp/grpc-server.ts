/**
 * A gRPC server for unary calls, written on node:http2 (gRPC over HTTP/2:
 * grpc/grpc doc/PROTOCOL-HTTP2.md). It serves exactly what an OTLP receiver
 * needs: one length-prefixed request message (identity or gzip), one
 * response message or a status in trailers. Why not @grpc/grpc-js here:
 * ARCHITECTURE.md, "Dependencies" (its per-call cost on the server side was
 * most of the collector's CPU at 10,000 spans/s in 100-span requests).
 *
 * What it does, per stream:
 * - `content-type` must start with `application/grpc`, else HTTP 415 (the
 *   spec's SHOULD, so a plain HTTP/2 client does not read a gRPC error as a
 *   success); `:method` must be POST (else 405).
 * - an unknown `:path` gets UNIMPLEMENTED; a `grpc-encoding` other than
 *   identity/gzip gets UNIMPLEMENTED with `grpc-accept-encoding`.
 * - the 5-byte prefix is read as soon as it arrives: a declared length over
 *   the limit is refused (RESOURCE_EXHAUSTED) before anything is buffered; the
 *   message is copied once into an exact-size buffer, whatever the DATA frame
 *   boundaries; a compressed flag without `grpc-encoding` is INTERNAL (the
 *   spec: "If the Message-Encoding header is omitted then the Compressed-Flag
 *   must be 0"); gzip inflates with the same limit (a gzip bomb stops at it).
 * - no message, a cut message, or a second message: INTERNAL.
 * - an answer sent before the client's END_STREAM is followed by RST_STREAM
 *   NO_ERROR (the spec's "Early Server Closure"); a client's RST_STREAM
 *   (cancel, deadline) drops what was buffered.
 * - errors are Trailers-Only: `grpc-status`, percent-encoded `grpc-message`,
 *   and `grpc-status-details-bin` (unpadded base64) when the handler gives
 *   details.
 * - `close()` sends GOAWAY on every connection, lets open calls finish, and
 *   destroys what is left after the grace period.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import zlib from 'node:zlib';
import { Http2Limits, trackConnections, type ConnectionMetrics } from './limits.js';

/** gRPC status codes (grpc/grpc doc/statuscodes.md). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export interface UnaryCall {
  /** Request path, e.g. `/pkg.Service/Method`. */
  readonly path: string;
  /** The request message, decompressed. */
  readonly message: Buffer;
  /** The message arrived compressed (`grpc-encoding: gzip`). */
  readonly compressed: boolean;
  /** Request headers (lowercase names), as node:http2 gives them. */
  readonly headers: http2.IncomingHttpHeaders;
}

export interface UnaryReply {
  code: number;
  /** The response message (code OK); empty when omitted. */
  body?: Uint8Array;
  /** `grpc-message` for an error (percent-encoded on the wire). */
  message?: string;
  /** An encoded google.rpc.Status for `grpc-status-details-bin`. */
  details?: Uint8Array;
}

export type UnaryHandler = (call: UnaryCall) => UnaryReply | Promise<UnaryReply>;

/** Why a call was answered by the server itself before reaching a handler. */
export type RefusedBy = 'too_large' | 'malformed' | 'unavailable';

export interface UnaryGrpcServerOptions {
  /** Handlers by path. */
  methods: Record<string, UnaryHandler>;
  /** Largest request message in bytes, before and after decompression. */
  maxRecvBytes: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams: number;
  /**
   * HTTP/2 flow-control window for each stream and for each connection, in
   * bytes (the protocol default is 65,535). Default DEFAULT_WINDOW_BYTES.
   */
  windowBytes?: number;
  /** Serve TLS (ALPN h2) with this key pair; client certificates checked against `ca` when `requireClientCert`. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requireClientCert?: boolean; minVersion?: tls.SecureVersion };
  /**
   * Runs when a call's headers arrive, before its message is read: a reply
   * answers the call at once (Trailers-Only, then RST_STREAM if the client is
   * still sending), undefined reads it. For authentication and for refusing
   * while the pipeline refuses.
   */
  admit?: (path: string, headers: http2.IncomingHttpHeaders) => UnaryReply | undefined;
  /** Close connections with no open stream for this long (GOAWAY); 0 or undefined: never. */
  idleTimeoutMs?: number;
  /** Reset a stream whose request message has not fully arrived this long after its headers; 0 or undefined: never. */
  readTimeoutMs?: number;
  /** Open connections at once; beyond it new connections are closed as they arrive (0 or undefined: no limit). */
  maxConnections?: number;
  /** Counts what the limits close (and keeps the open-connection gauge). */
  connectionMetrics?: ConnectionMetrics;
  /** Counts calls the server answered itself (size limit, bad framing or gzip, shutting down). */
  onRefused?: (path: string, reason: RefusedBy) => void;
  /** A handler threw or rejected: the call is answered INTERNAL and this is told. */
  onHandlerError?: (err: unknown) => void;
}

/**
 * 8 MiB: two 4 MiB requests in flight per stream without waiting for a
 * WINDOW_UPDATE round trip (the issue measured grpc-js at 0.47 M spans/s with
 * the 64 KiB default and 1.1 M with 8 MiB). Flow control is not what bounds
 * memory here: a stream's message is limited by maxRecvBytes.
 */
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;

const ACCEPT_ENCODING = 'identity,gzip';
const EMPTY_MESSAGE = Buffer.alloc(5);
const OK_HEADERS = Object.freeze({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': ACCEPT_ENCODING });
const OK_TRAILERS = Object.freeze({ 'grpc-status': '0' });

export class UnaryGrpcServer {
  private readonly opts: UnaryGrpcServerOptions;
  private readonly window: number;
  private streamWindow: number;
  private server: http2.Http2Server | http2.Http2SecureServer | undefined;
  private limits: Http2Limits | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** The last details encoded (refusals repeat one answer). */
  private lastDetails: Uint8Array | undefined = undefined;
  private lastDetailsB64 = '';
  /** New calls are answered UNAVAILABLE (set by `close()`, or by the owner while it drains). */
  draining = false;
  port = 0;

  constructor(opts: UnaryGrpcServerOptions) {
    this.opts = opts;
    this.window = Math.min(2 ** 31 - 1, Math.max(65_535, opts.windowBytes ?? DEFAULT_WINDOW_BYTES));
    this.streamWindow = this.window;
  }

  /** Listens on host:port (port 0: any free port); resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const settings: http2.Settings = { maxConcurrentStreams: this.opts.maxConcurrentStreams, initialWindowSize: this.window };
    // Room for the flow-control window of a few streams; nghttp2 refuses new streams past this (default 10 MB).
    const maxSessionMemory = Math.max(10, Math.ceil((4 * this.window) / (1024 * 1024)));
    const t = this.opts.tls;
    const o = this.opts;
    const server: http2.Http2Server | http2.Http2SecureServer = t
      ? http2.createSecureServer({
          settings,
          maxSessionMemory,
          key: t.key,
          cert: t.cert,
          ca: t.ca,
          minVersion: t.minVersion,
          requestCert: t.requireClientCert ?? false,
          rejectUnauthorized: t.requireClientCert ?? false,
        })
      : http2.createServer({ settings, maxSessionMemory });
    const m = o.connectionMetrics;
    if (m !== undefined || (o.maxConnections ?? 0) > 0) {
      if (m !== undefined) trackConnections(server, { idleMs: o.idleTimeoutMs ?? 0, maxConnections: o.maxConnections ?? 0 }, m, t !== undefined);
      else server.maxConnections = o.maxConnections ?? 0;
    }
    if ((o.idleTimeoutMs ?? 0) > 0 || (o.readTimeoutMs ?? 0) > 0) {
      this.limits = new Http2Limits(o.idleTimeoutMs ?? 0, o.readTimeoutMs ?? 0, m);
      this.limits.attach(server);
    }
    server.on('session', (s) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
      s.on('error', () => undefined); // a broken connection only ends its own calls
      if (this.window > 65_535) s.setLocalWindowSize(this.window);
      if (this.streamWindow !== this.window) applyStreamWindow(s, this.streamWindow);
    });
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    server.on('sessionError', () => undefined);
    this.port = await listenOn(server, host, port);
    this.server = server;
    return this.port;
  }

  /**
   * Stops listening and sends GOAWAY on every connection: calls already
   * started finish, new ones are refused (clients retry them as UNAVAILABLE).
   * After `graceMs` what is still open is destroyed. Safe to call twice.
   */
  /**
   * Sets the initial flow-control window of streams (SETTINGS_INITIAL_WINDOW_SIZE)
   * on every connection and on new ones; `undefined` restores the configured
   * window. While every call is being refused at its headers, a small window
   * keeps each refused client from pushing more than 64 KiB of its message.
   */
  setStreamWindow(bytes: number | undefined): void {
    const w = bytes ?? this.window;
    if (w === this.streamWindow) return;
    this.streamWindow = w;
    for (const s of this.sessions) applyStreamWindow(s, w);
  }

  /** Replaces the TLS key pair (and CA) for new handshakes; open connections keep theirs. */
  setSecureContext(options: tls.SecureContextOptions): void {
    const s = this.server;
    if (s !== undefined && 'setSecureContext' in s) s.setSecureContext(options);
  }

  async close(graceMs = 5000): Promise<void> {
    this.draining = true;
    this.limits?.stop();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    const force = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    force.unref();
    await closed;
    clearTimeout(force);
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // RST from the client, broken socket: nothing to answer
    const path = headers[':path'] ?? '';
    const ctype = headers['content-type'] ?? '';
    if (!ctype.startsWith('application/grpc')) {
      return reject(stream, 415, `unsupported content type "${ctype}"; gRPC requests use application/grpc`);
    }
    if (headers[':method'] !== 'POST') return reject(stream, 405, `method ${headers[':method']} not allowed; gRPC uses POST`);
    const handler = Object.prototype.hasOwnProperty.call(this.opts.methods, path) ? this.opts.methods[path] : undefined;
    if (handler === undefined) return this.fail(stream, GrpcCode.UNIMPLEMENTED, `unknown method ${path}`);
    const encoding = headers['grpc-encoding'] ?? 'identity';
    if (encoding !== 'identity' && encoding !== 'gzip') {
      return this.fail(stream, GrpcCode.UNIMPLEMENTED, `unsupported grpc-encoding "${encoding}"; this server accepts ${ACCEPT_ENCODING}`);
    }
    if (this.draining) {
      this.opts.onRefused?.(path, 'unavailable');
      return this.fail(stream, GrpcCode.UNAVAILABLE, 'server is shutting down');
    }
    const admit = this.opts.admit;
    if (admit !== undefined) {
      const r = admit(path, headers);
      if (r !== undefined) return this.fail(stream, r.code, r.message ?? '', r.details);
    }
    this.readMessage(stream, headers, path, encoding === 'gzip', handler);
  }

  /** Reads the one length-prefixed message of a unary call, then runs the handler. */
  private readMessage(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, path: string, gzip: boolean, handler: UnaryHandler): void {
    const limit = this.opts.maxRecvBytes;
    const prefix = Buffer.alloc(5);
    let prefixFill = 0;
    let message: Buffer | undefined;
    let fill = 0;
    let compressed = false;
    let done = false; // answered (or cancelled): ignore further data
    const refuse = (code: number, text: string, why: RefusedBy): void => {
      done = true;
      message = undefined;
      this.opts.onRefused?.(path, why);
      this.fail(stream, code, text);
    };
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      let at = 0;
      while (at < chunk.length) {
        if (message === undefined) {
          const n = Math.min(5 - prefixFill, chunk.length - at);
          chunk.copy(prefix, prefixFill, at, at + n);
          prefixFill += n;
          at += n;
          if (prefixFill < 5) return;
          const flag = prefix[0];
          const len = prefix.readUInt32BE(1);
          if (flag > 1) return refuse(GrpcCode.INTERNAL, `invalid compressed flag ${flag} in the message prefix`, 'malformed');
          if (flag === 1 && !gzip) {
            return refuse(GrpcCode.INTERNAL, 'compressed flag set but the request has no grpc-encoding (the message must be uncompressed)', 'malformed');
          }
          if (len > limit) return refuse(GrpcCode.RESOURCE_EXHAUSTED, `request message of ${len} bytes exceeds the limit of ${limit} bytes`, 'too_large');
          compressed = flag === 1;
          message = Buffer.allocUnsafe(len);
          fill = 0;
          if (len === 0) {
            fill = -1; // complete; marks "one message seen"
            continue;
          }
        }
        if (fill < 0) return refuse(GrpcCode.INTERNAL, 'a unary call carries one request message; got a second one', 'malformed');
        const n = Math.min(message.length - fill, chunk.length - at);
        chunk.copy(message, fill, at, at + n);
        fill += n;
        at += n;
        if (fill === message.length) fill = -1;
      }
    });
    stream.on('close', () => {
      // The client cancelled (RST_STREAM) or the connection broke before an answer: let the bytes go.
      done = true;
      message = undefined;
    });
    stream.on('end', () => {
      if (done) return;
      if (message === undefined || fill >= 0) {
        const text = message === undefined && prefixFill === 0 ? 'no request message' : 'the request ended inside a message';
        return refuse(GrpcCode.INTERNAL, text, 'malformed');
      }
      done = true;
      const msg = message;
      message = undefined;
      if (!compressed) return this.run(stream, handler, { path, message: msg, compressed: false, headers });
      zlib.gunzip(msg, { maxOutputLength: limit }, (err, out) => {
        if (err) {
          const big = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
          this.opts.onRefused?.(path, big ? 'too_large' : 'malformed');
          if (big) return this.fail(stream, GrpcCode.RESOURCE_EXHAUSTED, `decompressed request message exceeds the limit of ${limit} bytes`);
          return this.fail(stream, GrpcCode.INTERNAL, `invalid gzip message: ${err.message}`);
        }
        this.run(stream, handler, { path, message: out, compressed: true, headers });
      });
    });
  }

  private run(stream: http2.ServerHttp2Stream, handler: UnaryHandler, call: UnaryCall): void {
    let reply: UnaryReply | Promise<UnaryReply>;
    try {
      reply = handler(call);
    } catch (err) {
      this.opts.onHandlerError?.(err);
      return this.fail(stream, GrpcCode.INTERNAL, 'internal error');
    }
    if (reply instanceof Promise) {
      reply.then(
        (r) => this.answer(stream, r),
        (err) => {
          this.opts.onHandlerError?.(err);
          this.fail(stream, GrpcCode.INTERNAL, 'internal error');
        },
      );
    } else this.answer(stream, reply);
  }

  private answer(stream: http2.ServerHttp2Stream, r: UnaryReply): void {
    if (r.code !== GrpcCode.OK) return this.fail(stream, r.code, r.message ?? '', r.details);
    if (stream.destroyed || stream.closed) return; // the client went away meanwhile
    let body = EMPTY_MESSAGE;
    if (r.body !== undefined && r.body.length > 0) {
      body = Buffer.allocUnsafe(5 + r.body.length);
      body[0] = 0;
      body.writeUInt32BE(r.body.length, 1);
      body.set(r.body, 5);
    }
    stream.respond(OK_HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
    stream.end(body);
  }

  /** Trailers-Only answer with a status; then RST_STREAM NO_ERROR if the client is still sending. */
  private fail(stream: http2.ServerHttp2Stream, code: number, message: string, details?: Uint8Array): void {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    const h: http2.OutgoingHttpHeaders = {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-accept-encoding': ACCEPT_ENCODING,
      'grpc-status': String(code),
    };
    if (message) h['grpc-message'] = percentEncode(message);
    if (details !== undefined && details.length > 0) {
      if (details !== this.lastDetails) {
        this.lastDetails = details;
        this.lastDetailsB64 = Buffer.from(details).toString('base64').replace(/=+$/, '');
      }
      h['grpc-status-details-bin'] = this.lastDetailsB64;
    }
    stream.respond(h, { endStream: true });
    endEarly(stream);
  }
}

function applyStreamWindow(s: http2.ServerHttp2Session, bytes: number): void {
  if (s.closed || s.destroyed) return;
  try {
    s.settings({ initialWindowSize: bytes });
  } catch {
    // Too many SETTINGS waiting for the client's ACK: the next change applies it.
  }
}

/** Starts `server` listening; resolves with the bound port (port 0 picks a free one). */
export async function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  return typeof a === 'object' && a ? a.port : port;
}

/** A non-gRPC answer (wrong content type or method): an HTTP status with a text body. */
function reject(stream: http2.ServerHttp2Stream, status: number, text: string): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', ...(status === 405 ? { allow: 'POST' } : {}) });
  stream.end(text);
  endEarly(stream);
}

/** The answer went out before the request ended: stop the client's upload (RST_STREAM NO_ERROR once our frames are out). */
function endEarly(stream: http2.ServerHttp2Stream): void {
  if (!stream.readableEnded) {
    stream.resume();
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }
}

/** `grpc-message` encoding: bytes outside 0x20–0x7E, and `%`, as %XX of their UTF-8. */
export function percentEncode(s: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(s)) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
  }
  return out;
}
