// Issue 17 for logs and metrics: a bad resource or scope header, a bad value or a
// malformed data point rejects the items it covers, never the rest of the request.
import { describe, expect, it } from 'vitest';
import { scanLogsRequest } from './logs.js';
import { scanMetricsRequest } from './metrics.js';
import { WireError, WireWriter, WIRE_I64, WIRE_LEN, WIRE_VARINT } from './wire.js';

/** A field: varint, fixed64 (a double), or length-delimited (bytes, a string, or a nested message). */
type F = [number, 'v', number] | [number, 'd', number] | [number, 'b', Uint8Array | string | F[]];

function msg(fields: F[]): Uint8Array {
  const w = new WireWriter();
  for (const [no, kind, val] of fields) {
    if (kind === 'v') {
      w.tag(no, WIRE_VARINT);
      w.uint32(val);
    } else if (kind === 'd') {
      w.tag(no, WIRE_I64);
      w.double(val);
    } else {
      const b = typeof val === 'string' ? Buffer.from(val) : val instanceof Uint8Array ? val : msg(val);
      w.lenField(no, b, 0, b.length);
    }
  }
  return w.finish().slice();
}

const BAD_UTF8 = Uint8Array.from([0x61, 0xc3, 0x28]); // "a" then a 2-byte lead with no continuation

const kv = (key: string, value: F[]): F[] => [
  [1, 'b', key],
  [2, 'b', value],
];
const goodResource: F[] = [[1, 'b', kv('service.name', [[1, 'b', 'checkout']])]];

interface Group {
  resource?: F[];
  scopes: Array<{ scope?: F[]; items: Uint8Array[] }>;
}

/** An export request of any signal: ResourceX { resource = 1; ScopeX scopes = 2 } > ScopeX { scope = 1; items = 2 }. */
function request(groups: Group[]): Uint8Array {
  return msg(
    groups.map(
      (g): F => [
        1,
        'b',
        [
          ...(g.resource ? ([[1, 'b', g.resource]] as F[]) : []),
          ...g.scopes.map((s): F => [2, 'b', [...(s.scope ? ([[1, 'b', s.scope]] as F[]) : []), ...s.items.map((i): F => [2, 'b', i])]]),
        ],
      ],
    ),
  );
}

const logRecord = (body: F[] = [[1, 'b', 'hello']]): Uint8Array => msg([[2, 'v', 9], [5, 'b', body]]);

/** An AnyValue nested `levels` deep (level 1 is the outer value) through array values. */
function nested(levels: number): F[] {
  let v: F[] = [[1, 'b', 'leaf']];
  for (let i = 1; i < levels; i++) v = [[5, 'b', [[1, 'b', v]]]];
  return v;
}

const numberPoint = (extra: F[] = []): F[] => [[7, 'b', kv('k', [[1, 'b', 'v']])], [3, 'd', 1], [4, 'd', 2.5], ...extra];
const gauge = (name: string, points: F[][]): Uint8Array => msg([[1, 'b', name], [5, 'b', points.map((p): F => [1, 'b', p])]]);

describe('log requests: headers and values checked like spans', () => {
  it('rejects the records under a resource with an attribute that is not UTF-8, keeps the other resource', () => {
    const bad: F[] = [[1, 'b', kv('service.name', [[1, 'b', BAD_UTF8]])]];
    const s = scanLogsRequest(
      request([
        { resource: bad, scopes: [{ items: [logRecord(), logRecord()] }] },
        { resource: goodResource, scopes: [{ items: [logRecord()] }] },
      ]),
    );
    expect(s.items).toHaveLength(1);
    expect(s.rejected).toBe(2);
    expect(s.rejectReason).toMatch(/^resource_logs\[0\]: resource: attributes\[0\]\.value: invalid UTF-8 in string_value/);
  });

  it('rejects the records under a scope with a wrong wire type, keeps the other scope', () => {
    const s = scanLogsRequest(
      request([
        {
          resource: goodResource,
          scopes: [
            { scope: [[1, 'v', 7]], items: [logRecord()] }, // name as a varint
            { scope: [[1, 'b', 'lib']], items: [logRecord(), logRecord()] },
          ],
        },
      ]),
    );
    expect(s.items).toHaveLength(2);
    expect(s.rejected).toBe(1);
    expect(s.rejectReason).toMatch(/^resource_logs\[0\]\.scope_logs\[0\]: scope: name: varint, want length-delimited/);
  });

  it('rejects a body nested deeper than 32 levels, accepts 32', () => {
    const s = scanLogsRequest(request([{ resource: goodResource, scopes: [{ items: [logRecord(nested(33)), logRecord(nested(32)), logRecord()] }] }]));
    expect(s.items).toHaveLength(2);
    expect(s.rejected).toBe(1);
    expect(s.rejectReason).toMatch(/body: .*AnyValue nested deeper than 32 levels/);
  });

  it('rejects a record whose attribute key is not UTF-8 (checked by the shared UTF-8 check)', () => {
    const badAttr = msg([[6, 'b', [[1, 'b', BAD_UTF8], [2, 'b', [[3, 'v', 1]]]]]]);
    const s = scanLogsRequest(request([{ scopes: [{ items: [badAttr, logRecord()] }] }]));
    expect(s.items).toHaveLength(1);
    expect(s.rejectReason).toMatch(/attributes\[0\]: invalid UTF-8 in key/);
  });

  it('rejects a record or a metric with field number 0 or a group, alone', () => {
    const zero = Uint8Array.from([...logRecord(), 0x00, 0x01]);
    const group = Uint8Array.from([...logRecord(), 0xa3, 0x01, 0xa4, 0x01]); // field 20, group start/end
    const s = scanLogsRequest(request([{ scopes: [{ items: [zero, group, logRecord()] }] }]));
    expect(s.items).toHaveLength(1);
    expect(s.rejected).toBe(2);
    expect(s.rejectReason).toMatch(/field number 0/);
    const m = scanMetricsRequest(request([{ scopes: [{ items: [Uint8Array.from([...gauge('z', [numberPoint()]), 0x00, 0x01]), gauge('ok', [numberPoint()])] }] }]));
    expect(m.items.map((x) => x.name)).toEqual(['ok']);
    expect(m.rejectedPoints).toBe(1);
    expect(m.rejectReason).toMatch(/field number 0/);
  });

  it('refuses the whole request when the frame is broken', () => {
    // scope_logs (field 2 of ResourceLogs) as a varint
    expect(() => scanLogsRequest(msg([[1, 'b', [[2, 'v', 1]]]]))).toThrow(WireError);
  });
});

describe('metric requests: headers and data points checked fully', () => {
  it('rejects the metrics under a bad resource or scope, counting their points, and keeps the rest', () => {
    const bad: F[] = [[1, 'b', kv('host', [[1, 'b', BAD_UTF8]])]];
    const s = scanMetricsRequest(
      request([
        { resource: bad, scopes: [{ items: [gauge('a', [numberPoint(), numberPoint()])] }] },
        {
          resource: goodResource,
          scopes: [
            { scope: [[3, 'v', 1]], items: [gauge('b', [numberPoint()])] }, // attributes as a varint
            { items: [gauge('c', [numberPoint()])] },
          ],
        },
      ]),
    );
    expect(s.items.map((m) => m.name)).toEqual(['c']);
    expect(s.rejected).toBe(2);
    expect(s.rejectedPoints).toBe(3);
    expect(s.points).toBe(1);
    expect(s.rejectReason).toMatch(/^resource_metrics\[0\]: resource: attributes\[0\]\.value: invalid UTF-8/);
  });

  const malformed: Array<[string, Uint8Array, RegExp]> = [
    ['a number point value as a varint', gauge('m', [[[3, 'd', 1], [4, 'v', 3]]]), /gauge: data_points\[0\]: as_double: varint, want fixed64/],
    [
      'an exemplar span id of 5 bytes',
      gauge('m', [numberPoint([[5, 'b', [[4, 'b', Uint8Array.from([1, 2, 3, 4, 5])]]]])]),
      /data_points\[0\]\.exemplars\[0\]: invalid span_id: 5 bytes, want 8 or none/,
    ],
    [
      'an exemplar attribute that is not UTF-8',
      gauge('m', [numberPoint([[5, 'b', [[7, 'b', kv('k', [[1, 'b', BAD_UTF8]])]]]])]),
      /exemplars\[0\]\.filtered_attributes\[0\]\.value: invalid UTF-8/,
    ],
    [
      'packed histogram bucket counts of 7 bytes',
      msg([[1, 'b', 'h'], [9, 'b', [[1, 'b', [[4, 'd', 1], [6, 'b', new Uint8Array(7)]]]]]]),
      /histogram: data_points\[0\]: packed bucket_counts: 7 bytes, not a multiple of 8/,
    ],
    [
      'exponential histogram buckets with a truncated packed varint',
      msg([[1, 'b', 'e'], [10, 'b', [[1, 'b', [[8, 'b', [[2, 'b', Uint8Array.from([0x05, 0x80])]]]]]]]]),
      /exponential_histogram: data_points\[0\]\.positive\.bucket_counts: truncated varint/,
    ],
    [
      'a summary quantile value as a varint',
      msg([[1, 'b', 's'], [11, 'b', [[1, 'b', [[6, 'b', [[1, 'd', 0.5], [2, 'v', 1]]]]]]]]),
      /summary: data_points\[0\]\.quantile_values\[0\]: value: varint, want fixed64/,
    ],
    ['a data point field number 0', gauge('m', [[[0, 'v', 1]]]), /field number 0/],
    ['a data point with a group', msg([[1, 'b', 'm'], [5, 'b', [[1, 'b', Uint8Array.from([0xa3, 0x01, 0xa4, 0x01])]]]]), /field 20: group start is not allowed/],
    ['a data point time as a varint', gauge('m', [numberPoint([[3, 'v', 0]])]), /time_unix_nano: varint, want fixed64/],
  ];

  for (const [what, bad, reason] of malformed) {
    it(`rejects a metric with ${what}, keeps the good metric beside it`, () => {
      const good = gauge('ok', [numberPoint()]);
      const s = scanMetricsRequest(request([{ resource: goodResource, scopes: [{ items: [good, bad, good] }] }]));
      expect(s.rejectReason).toMatch(reason);
      expect(s.items.map((m) => m.name)).toEqual(['ok', 'ok']);
      expect(s.rejected).toBe(1);
      expect(s.points).toBe(2);
    });
  }

  it('accepts bucket counts packed and unpacked, exemplars with ids, and unknown fields', () => {
    const hist = msg([
      [1, 'b', 'h'],
      [9, 'b', [[1, 'b', [[4, 'd', 3], [6, 'b', new Uint8Array(16)], [6, 'd', 1], [7, 'b', new Uint8Array(8)], [8, 'b', [[5, 'b', new Uint8Array(16).fill(1)], [4, 'b', new Uint8Array(8).fill(2)], [3, 'd', 1]]], [200, 'v', 5]]], [2, 'v', 1]]],
    ]);
    const exp = msg([[1, 'b', 'e'], [10, 'b', [[1, 'b', [[6, 'v', 3], [8, 'b', [[1, 'v', 4], [2, 'b', Uint8Array.from([1, 0x80, 0x01, 3])], [2, 'v', 9]]]]]]]]);
    const s = scanMetricsRequest(request([{ scopes: [{ items: [hist, exp] }] }]));
    expect(s.rejectReason).toBe('');
    expect(s.items.map((m) => [m.name, m.points])).toEqual([
      ['h', 1],
      ['e', 1],
    ]);
  });
});
