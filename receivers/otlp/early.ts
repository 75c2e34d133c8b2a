/**
 * Answering an HTTP/1 request before (all of) its body was read, so that the
 * client reads the answer.
 *
 * A server that answers and closes while the client is still sending makes
 * the client's kernel receive a reset, which throws away the answer it had
 * not read yet: the client sees EPIPE or ECONNRESET, takes it for a network
 * error, and sends the same body again. So the answer is written whole
 * (with `Content-Length` and, when asked, `Connection: close`), and the rest
 * of the body is read and thrown away, up to `maxDiscardBytes` and
 * `maxDiscardMs`; only when the client has finished (or past a bound,
 * counted as `discard_limit`) is the connection closed. Without `close` the
 * connection stays open for the next request once the body is read.
 */
import type http from 'node:http';
import type { ConnectionMetrics } from './limits.js';

export interface DiscardBounds {
  /** Body bytes read and thrown away after an early answer before the connection is cut. */
  maxDiscardBytes: number;
  /** Time allowed for the client to finish sending after an early answer. */
  maxDiscardMs: number;
}

/** 64 MiB and 10 s: a client sending a 20-60 MiB body on a slow link still reads its 413. */
export const DEFAULT_DISCARD: DiscardBounds = { maxDiscardBytes: 64 * 1024 * 1024, maxDiscardMs: 10_000 };

export function answerEarly(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Uint8Array | string,
  close: boolean,
  bounds: DiscardBounds,
  m: ConnectionMetrics | undefined,
): void {
  if (res.headersSent) return;
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.statusCode = status;
  for (const k in headers) res.setHeader(k, headers[k]);
  res.setHeader('Content-Length', buf.length);
  if (req.complete) {
    // Nothing left to read (a body already taken whole, or none).
    if (close) res.setHeader('Connection', 'close');
    res.end(buf);
    return;
  }
  if (close) res.setHeader('Connection', 'close');
  let discarded = 0;
  let finished = false;
  const socket = req.socket;
  const cut = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    m?.closed('discard_limit');
    socket.destroy();
  };
  const timer = setTimeout(cut, bounds.maxDiscardMs);
  timer.unref();
  req.on('data', (c: Buffer) => {
    discarded += c.length;
    if (discarded > bounds.maxDiscardBytes) cut();
  });
  req.on('end', () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (close) res.end(); // the answer is already out; this lets node close the connection
  });
  req.on('error', () => undefined);
  req.on('close', () => {
    // The client went away (or the request completed): nothing left to bound.
    finished = true;
    clearTimeout(timer);
  });
  if (close) {
    // The whole answer goes out now; ending the response (which closes the
    // socket, since Connection: close) waits for the end of the body.
    res.write(buf);
  } else res.end(buf);
}
