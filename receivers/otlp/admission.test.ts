/**
 * Refusing cheaply: once the pipeline refuses, requests are answered when
 * their headers arrive (bodies never read) for a short hold, then one probe
 * is let through; its outcome clears or re-arms the refusal. The hint given
 * counts down to the pipeline's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import http2 from 'node:http2';
import { RefusalMemory } from './admission.js';
import { OtlpReceiver } from './receiver.js';
import { OtlpReceiverSchema } from './config.js';
import { withDefaults } from '../../config/defaults.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { MemoryLimitError, PermanentError, RetryableError } from '../../collector/errors.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import { requestBytes } from '../../test/otlp.js';

class FakeClock {
  t = 1_000_000;
  now = (): number => this.t;
}

describe('RefusalMemory', () => {
  it('refuses from memory during the hold, lets one probe through after it, and clears on acceptance', () => {
    const clock = new FakeClock();
    const a = new RefusalMemory(clock, 200);
    expect(a.check()).toBeUndefined();
    a.refused(new RetryableError('queue full', 1000, 'ERR_QUEUE_FULL'));
    const r = a.check();
    expect(r?.code).toBe('ERR_QUEUE_FULL');
    expect(r?.retryAfterMs).toBe(1000);
    clock.t += 150;
    expect(a.check()?.retryAfterMs).toBe(850); // what is left of the pipeline's hint
    clock.t += 50; // the hold is over: one probe, the rest still refused
    expect(a.check()).toBeUndefined();
    expect(a.check()?.retryAfterMs).toBe(800);
    expect(a.check()).toBeDefined();
    a.accepted();
    expect(a.check()).toBeUndefined();
    expect(a.check()).toBeUndefined();
  });

  it('re-arms with the probe\'s fresh refusal, holds no longer than a short hint, and probes again if the probe never answers', () => {
    const clock = new FakeClock();
    const a = new RefusalMemory(clock, 200);
    a.refused(new RetryableError('full', 40, 'ERR_QUEUE_FULL'));
    expect(a.check()).toBeDefined();
    clock.t += 40; // a 40 ms hint holds 40 ms, not 200
    expect(a.check()).toBeUndefined(); // probe
    a.refused(new MemoryLimitError('memory', 1000));
    expect(a.check()?.code).toBe('ERR_MEMORY_LIMIT');
    clock.t += 200;
    expect(a.check()).toBeUndefined(); // probe, which never comes back (a cut request)
    expect(a.check()).toBeDefined();
    clock.t += 200;
    expect(a.check()).toBeUndefined(); // the next probe
  });

  it('does not remember permanent errors or shutdown', () => {
    const a = new RefusalMemory(new FakeClock());
    a.refused(new PermanentError('bad data'));
    a.refused(new RetryableError('stopping', 1000, 'ERR_SHUTTING_DOWN'));
    a.refused(new Error('unexpected'));
    expect(a.check()).toBeUndefined();
  });
});

/** A pipeline that refuses while `full` and counts what reached it. */
class Gate implements TracesConsumer {
  full = true;
  offered = 0;
  async consume(spans: Span[]): Promise<void> {
    this.offered++;
    if (this.full) throw new RetryableError('sending queue is full', 300, 'ERR_QUEUE_FULL');
    void spans;
  }
}

describe('receiver refusing at the headers', () => {
  const clock = new FakeClock();
  const gate = new Gate();
  const telemetry = new Telemetry();
  let receiver: OtlpReceiver;
  const BODY = Buffer.from(requestBytes([{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' }]));

  beforeAll(async () => {
    const config = withDefaults(OtlpReceiverSchema, { protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } } });
    receiver = new OtlpReceiver({ id: 'otlp', logger: silentLogger(), telemetry, clock }, config, gate);
    await receiver.start();
  });
  afterAll(async () => {
    await receiver.shutdown();
  });

  function post(body: Buffer, opts: { partial?: boolean } = {}): Promise<{ status: number; retryAfter: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: receiver.httpPort, method: 'POST', path: '/v1/traces', agent: false, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
          if (opts.partial) req.end(body.subarray(16)); // the rest, after the answer
        },
      );
      req.on('error', reject);
      if (opts.partial) req.write(body.subarray(0, 16));
      else req.end(body);
    });
  }

  it('answers HTTP requests 503 with Retry-After before their body arrives while the pipeline refuses', async () => {
    const first = await post(BODY);
    expect(first.status).toBe(503);
    expect(gate.offered).toBe(1);
    // The next request is answered from its headers: it sends 16 bytes, gets 503, then sends the rest.
    const r = await post(BODY, { partial: true });
    expect(r).toEqual({ status: 503, retryAfter: '1' });
    expect(gate.offered).toBe(1);
    expect(await telemetry.total('sidecar_receiver_refused_requests_total', { transport: 'http', reason: 'retryable' })).toBe(1);
  });

  it('answers gRPC calls Trailers-Only UNAVAILABLE with RetryInfo and resets the stream before the message', async () => {
    const s = http2.connect(`http://127.0.0.1:${receiver.grpcPort}`);
    try {
      const stream = s.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => undefined);
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(BODY.length, 1);
      stream.write(prefix); // only the prefix: the answer must not wait for the message
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
      expect(headers['grpc-status']).toBe('14');
      expect(String(headers['grpc-status-details-bin'] ?? '')).not.toBe('');
      const rst = await new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
      expect(rst).toBe(http2.constants.NGHTTP2_NO_ERROR);
      expect(gate.offered).toBe(1);
    } finally {
      s.close();
    }
  });

  it('lets a probe through after the hold, and takes everything again once the pipeline has room', async () => {
    gate.full = false;
    clock.t += 300; // the hold (and the 300 ms hint) are over
    expect((await post(BODY)).status).toBe(200); // the probe
    expect(gate.offered).toBe(2);
    expect((await post(BODY)).status).toBe(200);
    expect(gate.offered).toBe(3);
  });
});
