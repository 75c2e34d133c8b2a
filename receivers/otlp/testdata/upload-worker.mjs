// A busy HTTP client for oversize.test.ts, in its own thread so the server
// cannot serialize with it: writes a 22 MiB body in 64 KiB chunks (declared
// with Content-Length, or chunked), pausing 5 ms per MiB as an SDK's thread
// busy with other work does, and reports whether it read an answer.
import http from 'node:http';
import { workerData, parentPort } from 'node:worker_threads';

const { port, mode } = workerData;
const BODY = 22 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 7);
const pause = new Int32Array(new SharedArrayBuffer(4));
const headers = { 'content-type': 'application/x-protobuf' };
if (mode !== 'chunked') headers['content-length'] = BODY;
const out = { status: undefined, error: undefined, written: 0 };
let done = false;
const finish = () => {
  if (done) return;
  done = true;
  parentPort.postMessage(out);
};
const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/traces', headers, agent: false });
req.on('response', (res) => {
  out.status = res.statusCode;
  res.resume();
  res.on('end', finish);
});
req.on('error', (e) => {
  if (out.status === undefined) out.error = e.code ?? e.message;
  finish();
});
const write = () => {
  while (out.written < BODY) {
    if (req.destroyed) return;
    out.written += CHUNK.length;
    if (out.written % (1024 * 1024) === 0) Atomics.wait(pause, 0, 0, 5);
    if (!req.write(CHUNK)) return void req.once('drain', write);
  }
  req.end();
};
write();
