/**
 * A gRPC client for unary calls on node:http2, the counterpart of the
 * receiver's server (receivers/otlp/grpc-server.ts). It does what the OTLP
 * exporter needs and no more: one connection per endpoint, re-opened after it
 * closes or goes away; one length-prefixed request message (identity or gzip)
 * written as the 5-byte prefix followed by the caller's bytes, without a copy;
 * the status from trailers (or from a Trailers-Only answer, or mapped from the
 * HTTP status or RST_STREAM code when there is none).
 *
 * Why not @grpc/grpc-js here: its client copies every request into a framed
 * buffer and keeps per-call machinery (interceptors, filters, metadata
 * objects); at the Collector's 10k spans/s point (`cpu-10k`) dropping it took
 * the collector from 6.6% to 6.1% of a core and from 20-21 to 17 major GCs
 * per run (BENCHMARKS.md, issue 2).
 *
 * A call resolves with the status it ended with; it never rejects. A failed
 * connection, TLS handshake, reset stream or closed connection is
 * UNAVAILABLE (retryable), as in grpc-js.
 */
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { GrpcCode } from '../../receivers/otlp/grpc-server.js';

export interface UnaryClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Accept any server certificate. */
  skipVerify: boolean;
}

export interface UnaryClientOptions {
  /** host:port */
  address: string;
  /** undefined: plaintext. */
  tls: UnaryClientTls | undefined;
  userAgent: string;
  /** Largest response message accepted. */
  maxRecvBytes: number;
}

export interface UnaryOutcome {
  code: number;
  /** grpc-message, percent-decoded. */
  message: string;
  /** grpc-status-details-bin, decoded. */
  details?: Buffer;
  /** The response message (code OK), when it could be read. */
  body?: Buffer;
}

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

export class UnaryGrpcClient {
  private readonly opts: UnaryClientOptions;
  private readonly authority: string;
  private session: http2.ClientHttp2Session | undefined;
  private active = 0;
  private closed = false;

  constructor(opts: UnaryClientOptions) {
    this.opts = opts;
    this.authority = `${opts.tls ? 'https' : 'http'}://${opts.address}`;
  }

  /** Closes the connection; calls in flight end UNAVAILABLE. Later calls fail. */
  close(): void {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    s?.destroy();
  }

  call(path: string, message: Uint8Array, headers: Record<string, string>, gzip: boolean, signal: AbortSignal): Promise<UnaryOutcome> {
    return new Promise<UnaryOutcome>((resolve) => {
      if (this.closed) return resolve({ code: GrpcCode.UNAVAILABLE, message: 'client closed' });
      if (signal.aborted) return resolve({ code: GrpcCode.CANCELLED, message: 'call cancelled' });
      let stream: http2.ClientHttp2Stream;
      try {
        const h: http2.OutgoingHttpHeaders = {
          ...headers,
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'user-agent': this.opts.userAgent,
          'grpc-accept-encoding': 'identity',
        };
        if (gzip) h['grpc-encoding'] = 'gzip';
        stream = this.connection().request(h);
      } catch (err) {
        return resolve({ code: GrpcCode.UNAVAILABLE, message: `cannot start the call: ${(err as Error).message}` });
      }
      this.hold();
      let head: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (o: UnaryOutcome): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        this.release();
        resolve(o);
      };
      const onAbort = (): void => {
        if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
        finish({ code: GrpcCode.CANCELLED, message: 'call cancelled' });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('response', (h) => (head = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.opts.maxRecvBytes + 5) {
          stream.close(NGHTTP2_CANCEL);
          finish({ code: GrpcCode.RESOURCE_EXHAUSTED, message: `response larger than ${this.opts.maxRecvBytes} bytes` });
          return;
        }
        chunks.push(c);
      });
      // A reset or failed connection emits 'error' and then 'close': the status is decided at
      // 'close', where the RST_STREAM code is known, and the error only words the message.
      let failure: Error | undefined;
      stream.on('error', (err: Error) => (failure = err));
      stream.on('close', () => finish(outcome(head, trailers, chunks, size, stream.rstCode, failure)));
      if (!gzip) return send(stream, 0, message);
      zlib.gzip(message, (err, out) => {
        if (done) return;
        if (err) {
          stream.close(NGHTTP2_CANCEL);
          return finish({ code: GrpcCode.INTERNAL, message: `gzip failed: ${err.message}` });
        }
        send(stream, 1, out);
      });
    });
  }

  private connection(): http2.ClientHttp2Session {
    const cur = this.session;
    if (cur !== undefined && !cur.closed && !cur.destroyed) return cur;
    const t = this.opts.tls;
    const s = t
      ? http2.connect(this.authority, {
          ca: t.ca,
          cert: t.cert,
          key: t.key,
          rejectUnauthorized: !t.skipVerify,
          ...(t.skipVerify ? { checkServerIdentity: () => undefined } : {}),
        })
      : http2.connect(this.authority);
    s.on('error', () => undefined); // each call learns of it through its stream
    const forget = () => {
      if (this.session === s) this.session = undefined;
    };
    s.on('goaway', forget);
    s.on('close', forget);
    if (this.active === 0) s.unref();
    this.session = s;
    return s;
  }

  /** Like grpc-js: an idle connection does not keep the process alive. */
  private hold(): void {
    if (this.active++ === 0) this.session?.ref();
  }

  private release(): void {
    if (--this.active === 0) this.session?.unref();
  }
}

function send(stream: http2.ClientHttp2Stream, flag: number, body: Uint8Array): void {
  const prefix = Buffer.allocUnsafe(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(body.length, 1);
  stream.write(prefix);
  stream.end(body);
}

function outcome(
  head: http2.IncomingHttpHeaders | undefined,
  trailers: http2.IncomingHttpHeaders | undefined,
  chunks: Buffer[],
  size: number,
  rstCode: number | undefined,
  failure: Error | undefined,
): UnaryOutcome {
  const src = trailers?.['grpc-status'] !== undefined ? trailers : head;
  const status = src?.['grpc-status'];
  if (status === undefined) {
    const http = Number(head?.[':status'] ?? 200);
    if (http !== 200) return { code: codeForHttp(Number(http)), message: `HTTP status ${http} without a grpc-status` };
    if (rstCode !== undefined && rstCode !== NGHTTP2_NO_ERROR) return { code: codeForRst(rstCode), message: `stream reset with HTTP/2 code ${rstCode}${failure ? ` (${failure.message})` : ''}` };
    return { code: GrpcCode.UNAVAILABLE, message: failure?.message ?? 'the stream closed without a grpc-status' };
  }
  const o: UnaryOutcome = { code: Number(status), message: percentDecode(String(src!['grpc-message'] ?? '')) };
  const details = src!['grpc-status-details-bin'];
  if (typeof details === 'string' && details !== '') o.details = Buffer.from(details, 'base64');
  if (o.code === GrpcCode.OK && size >= 5) {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    // Only identity is accepted (grpc-accept-encoding), so a compressed answer is not read.
    if (all[0] === 0 && all.readUInt32BE(1) === size - 5) o.body = all.subarray(5);
  }
  return o;
}

/** gRPC over HTTP/2, "HTTP to gRPC Status Code Mapping". */
function codeForHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}

function codeForRst(code: number): number {
  if (code === NGHTTP2_CANCEL) return GrpcCode.CANCELLED;
  if (code === NGHTTP2_ENHANCE_YOUR_CALM) return GrpcCode.RESOURCE_EXHAUSTED;
  return GrpcCode.UNAVAILABLE; // REFUSED_STREAM and the rest: the request may be sent again
}

function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
