import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, loadConfigText, substituteEnv, type LoadOptions } from './load.js';
import { closest, editDistance } from './suggest.js';
import { fakeFactories } from './testdata/factories.js';

const opts = (env: Record<string, string | undefined> = {}): LoadOptions => ({ env, factories: fakeFactories });
const lines = (...l: string[]) => l.join('\n') + '\n';

/** The ConfigError message for `text`, or a failure if it loads. */
function errorOf(text: string, env: Record<string, string | undefined> = {}): string {
  try {
    loadConfigText(text, 'config.yaml', opts(env));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected the config to be rejected');
}

// A minimal valid service section, reused by the broken-file table.
const SERVICE = ['service:', '  pipelines:', '    traces:', '      receivers: [otlp]', '      exporters: [debug]'];

describe('broken config files', () => {
  const table: Array<{ name: string; text: string; env?: Record<string, string>; error: string }> = [
    {
      name: 'unknown top-level key, no close match',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'pipelines:', '  traces: {}', ...SERVICE),
      error: 'config.yaml:5:1: pipelines: unknown field "pipelines"; expected one of: receivers, processors, exporters, service',
    },
    {
      name: 'misspelled top-level key',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'servce:', '  pipelines: {}'),
      error: [
        'config.yaml:1:1: service: missing required field "service"',
        'config.yaml:5:1: servce: unknown field "servce"; did you mean "service"?',
      ].join('\n'),
    },
    {
      name: 'a Collector section this collector does not have',
      text: lines('extensions:', '  health_check:', 'receivers:', '  otlp:', 'exporters:', '  debug:', ...SERVICE),
      error: 'config.yaml:1:1: extensions: unknown field "extensions": extensions are not supported by this collector',
    },
    {
      name: 'unknown component key, with suggestion',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otlp:', '    endpoint: backend:4317', '    endpont: backend:4317', ...SERVICE),
      error: 'config.yaml:7:5: exporters.otlp.endpont: unknown field "endpont"; did you mean "endpoint"?',
    },
    {
      name: 'unknown key in a nested map',
      text: lines('receivers:', '  otlp:', '    protocols:', '      grpc:', '        endpoint: 127.0.0.1:4317', '        max_recv_msg_size: 8', 'exporters:', '  debug:', ...SERVICE),
      error:
        'config.yaml:6:9: receivers.otlp.protocols.grpc.max_recv_msg_size: unknown field "max_recv_msg_size"; did you mean "max_recv_msg_size_mib"?',
    },
    {
      name: 'unknown component type, with suggestion',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otpl:', '    endpoint: backend:4317', ...SERVICE),
      error: 'config.yaml:5:3: exporters.otpl: unknown exporter type "otpl"; did you mean "otlp"?',
    },
    {
      name: 'unknown component type with a name, no close match',
      text: lines('receivers:', '  otlp:', '  zipkin/legacy:', 'exporters:', '  debug:', ...SERVICE),
      error: 'config.yaml:3:3: receivers.zipkin/legacy: unknown receiver type "zipkin"; expected one of the receiver types: otlp',
    },
    {
      name: 'component id with an empty name',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  file/:', ...SERVICE),
      error: 'config.yaml:5:3: exporters.file/: invalid exporter id "file/": expected "type" or "type/name"',
    },
    {
      name: 'wrong type: a string where a number is needed',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otlp:', '    endpoint: backend:4317', '    sending_queue:', '      queue_size: lots', ...SERVICE),
      error: 'config.yaml:8:19: exporters.otlp.sending_queue.queue_size: must be an integer; got "lots"',
    },
    {
      name: 'wrong type: a map where a string is needed',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otlp:', '    endpoint:', '      host: backend', ...SERVICE),
      error: 'config.yaml:6:5: exporters.otlp.endpoint: must be a string; got a map',
    },
    {
      name: 'value out of range',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  file:', '    rotation:', '      max_megabytes: 0', ...SERVICE),
      error: 'config.yaml:7:22: exporters.file.rotation.max_megabytes: must be >= 1; got 0',
    },
    {
      name: 'value not among the allowed ones, with suggestion',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '    verbosity: detailled', ...SERVICE),
      error:
        'config.yaml:5:16: exporters.debug.verbosity: must be one of "basic", "normal", "detailed"; got "detailled"; did you mean "detailed"?',
    },
    {
      name: 'bad duration',
      text: lines('receivers:', '  otlp:', 'processors:', '  batch:', '    timeout: 200', '  batch/slow:', '    timeout: 2 seconds', 'exporters:', '  debug:', ...SERVICE),
      error:
        'config.yaml:7:14: processors.batch/slow.timeout: must be a duration such as "30s", "500ms" or "1m30s", or a number of milliseconds; got "2 seconds"',
    },
    {
      name: 'missing required field',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otlp/backend:', '    compression: none', ...SERVICE),
      error: 'config.yaml:5:3: exporters.otlp/backend.endpoint: missing required field "endpoint"',
    },
    {
      name: 'an empty value for a required option',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otlp:', '    endpoint:', '    compression:', ...SERVICE),
      error: 'config.yaml:6:5: exporters.otlp.endpoint: missing required field "endpoint"',
    },
    {
      name: 'a problem found by the factory validate(), located by its path',
      text: lines(
        'receivers:',
        '  otlp:',
        'processors:',
        '  filter:',
        '    rules:',
        '      - attribute: http.route',
        '        regex: "^/api"',
        '      - attribute: http.method',
        '        regex: "(GET"',
        'exporters:',
        '  debug:',
        ...SERVICE,
      ),
      error: 'config.yaml:9:16: processors.filter.rules[1].regex: invalid regular expression "(GET"',
    },
    {
      name: 'a union of maps: the alternative picked by its type field is the one explained',
      text: lines(
        'receivers:',
        '  otlp:',
        'processors:',
        '  sampler:',
        '    policies:',
        '      - { name: slow, type: latency, threshold_ms: 500 }',
        '      - name: some',
        '        type: probabilistic',
        '        sampling_percentage: 150',
        '      - { name: typo, type: probabilistc, sampling_percentage: 10 }',
        '      - { name: untyped }',
        'exporters:',
        '  debug:',
        ...SERVICE,
      ),
      error: [
        'config.yaml:9:30: processors.sampler.policies[1].sampling_percentage: must be <= 100; got 150',
        'config.yaml:10:29: processors.sampler.policies[2].type: must be one of "latency", "probabilistic"; got "probabilistc"; did you mean "probabilistic"?',
        'config.yaml:11:9: processors.sampler.policies[3].type: missing required field "type" (one of "latency", "probabilistic")',
      ].join('\n'),
    },
    {
      name: 'a component that is not a map',
      text: lines('receivers:', '  otlp: yes', 'exporters:', '  debug:', ...SERVICE),
      error: 'config.yaml:2:9: receivers.otlp: must be a map; got "yes"', // YAML 1.2: yes is a string
    },
    {
      name: 'a section that is not a map',
      text: lines('receivers: [otlp]', 'exporters:', '  debug:', ...SERVICE),
      error: [
        'config.yaml:1:1: receivers: must be a map of receiver ids to their configs; got a list',
        'config.yaml:7:19: service.pipelines.traces.receivers[0]: receiver "otlp" is not defined in receivers',
      ].join('\n'),
    },
    {
      name: 'missing environment variable',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  otlp:', '    endpoint: ${env:BACKEND_HOST}:4317', ...SERVICE),
      error: 'config.yaml:6:15: exporters.otlp.endpoint: environment variable "BACKEND_HOST" is not set and the reference gives no default',
    },
    {
      name: 'malformed environment reference',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  file:', '    path: "/data/${env:POD NAME}.jsonl"', ...SERVICE),
      error:
        'config.yaml:6:18: exporters.file.path: invalid environment reference "${env:POD NAME}": expected ${env:NAME} or ${env:NAME:-default}',
    },
    {
      name: 'YAML syntax error',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '    verbosity: "basic', ...SERVICE),
      error: 'config.yaml:11:1: YAML syntax error: Missing closing "quote',
    },
    {
      name: 'YAML syntax error: inconsistent indentation',
      text: lines('receivers:', '  otlp:', '    protocols:', '      http:', '     grpc:', 'exporters:', '  debug:', ...SERVICE),
      error: 'config.yaml:5:6: YAML syntax error: All mapping items must start at the same column',
    },
    {
      name: 'YAML duplicate key',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', '  debug:', ...SERVICE),
      error: 'config.yaml:5:3: YAML syntax error: Map keys must be unique',
    },
    {
      name: 'pipeline referencing an undefined exporter',
      text: lines('receivers:', '  otlp:', 'exporters:', '  otlp/backend:', '    endpoint: backend:4317', 'service:', '  pipelines:', '    traces:', '      receivers: [otlp]', '      exporters: [otlp/backnd]'),
      error: 'config.yaml:10:19: service.pipelines.traces.exporters[0]: exporter "otlp/backnd" is not defined in exporters; did you mean "otlp/backend"?',
    },
    {
      name: 'pipeline referencing a processor defined under exporters',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'service:', '  pipelines:', '    traces:', '      receivers: [otlp]', '      processors:', '        - debug', '      exporters: [debug]'),
      error: 'config.yaml:10:11: service.pipelines.traces.processors[0]: processor "debug" is not defined in processors',
    },
    {
      name: 'empty pipeline receivers',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'service:', '  pipelines:', '    traces:', '      receivers: []', '      exporters: [debug]'),
      error: 'config.yaml:8:7: service.pipelines.traces.receivers: a pipeline needs at least one receiver',
    },
    {
      name: 'pipeline without exporters',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'service:', '  pipelines:', '    traces:', '      receivers: [otlp]'),
      error: 'config.yaml:7:5: service.pipelines.traces.exporters: missing required field "exporters"',
    },
    {
      name: 'duplicate processor in a pipeline',
      text: lines(
        'receivers:',
        '  otlp:',
        'processors:',
        '  batch:',
        'exporters:',
        '  debug:',
        'service:',
        '  pipelines:',
        '    traces:',
        '      receivers: [otlp]',
        '      processors: [batch, batch]',
        '      exporters: [debug]',
      ),
      error: 'config.yaml:11:27: service.pipelines.traces.processors[1]: processor "batch" is listed more than once (first at processors[0])',
    },
    {
      name: 'a pipeline of an unknown signal',
      text: lines('receivers:', '  otlp:', 'exporters:', '  debug:', ...SERVICE, '    metric:', '      receivers: [otlp]', '      exporters: [debug]'),
      error:
        'config.yaml:10:5: service.pipelines.metric: unknown pipeline "metric": a pipeline id is traces, logs or metrics, optionally followed by "/name"; did you mean "metrics"?',
    },
    {
      name: 'service telemetry: bad level and bad address',
      text: lines(
        'receivers:',
        '  otlp:',
        'exporters:',
        '  debug:',
        ...SERVICE,
        '  telemetry:',
        '    logs:',
        '      level: warning',
        '    metrics:',
        '      address: "localhost"',
      ),
      error: [
        'config.yaml:12:14: service.telemetry.logs.level: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent"; got "warning"',
        'config.yaml:14:16: service.telemetry.metrics.address: must be host:port, such as "127.0.0.1:8888"; got "localhost"',
      ].join('\n'),
    },
    {
      name: 'the file is not a map',
      text: lines('- receivers', '- exporters'),
      error: 'config.yaml:1:1: the file must be a map with receivers, processors, exporters, service; got a list',
    },
  ];

  it.each(table)('$name', ({ text, env, error }) => {
    expect(errorOf(text, env)).toBe(error);
  });

  it('collects every problem, sorted by position, and exposes them as data', () => {
    const text = lines(
      'receivers:',
      '  otlp:',
      'exporters:',
      '  otlp:',
      '    endpont: backend:4317', // 5: unknown field (and endpoint missing, reported at line 4)
      '    compression: zip', // 6
      '  otpl:', // 7
      'service:',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [otlp, file]', // 12: file undefined
      '  shutdown_timeout: ${env:GRACE}', // 13
    );
    let err: ConfigError | undefined;
    try {
      loadConfigText(text, 'deploy/config.yaml', opts());
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message.split('\n')).toEqual([
      'deploy/config.yaml:4:3: exporters.otlp.endpoint: missing required field "endpoint"',
      'deploy/config.yaml:5:5: exporters.otlp.endpont: unknown field "endpont"; did you mean "endpoint"?',
      'deploy/config.yaml:6:18: exporters.otlp.compression: must be one of "gzip", "none"; got "zip"; did you mean "gzip"?',
      'deploy/config.yaml:7:3: exporters.otpl: unknown exporter type "otpl"; did you mean "otlp"?',
      'deploy/config.yaml:12:25: service.pipelines.traces.exporters[1]: exporter "file" is not defined in exporters; expected one of the defined exporters: otlp, otpl',
      'deploy/config.yaml:13:21: service.shutdown_timeout: environment variable "GRACE" is not set and the reference gives no default',
    ]);
    expect(err!.problems[1]).toEqual({
      file: 'deploy/config.yaml',
      line: 5,
      column: 5,
      path: 'exporters.otlp.endpont',
      message: 'unknown field "endpont"; did you mean "endpoint"?',
    });
  });

  it('reports an unreadable file by name', () => {
    expect(() => loadConfigFile('/nonexistent/dir/config.yaml', opts())).toThrow(
      new ConfigError([{ file: '/nonexistent/dir/config.yaml', line: 0, column: 0, path: '', message: 'cannot read config file: no such file' }]),
    );
    expect(() => loadConfigFile('/nonexistent/dir/config.yaml', opts())).toThrow(
      '/nonexistent/dir/config.yaml: cannot read config file: no such file',
    );
  });
});

describe('good config files', () => {
  it('fills every default, for components written as empty values and for the service', () => {
    const cfg = loadConfigText(
      lines('receivers:', '  otlp:', '    protocols:', '      grpc:', 'processors:', '  batch:', 'exporters:', '  file:', ...SERVICE.slice(0, 4), '      processors: [batch]', '      exporters: [file]'),
      'config.yaml',
      opts(),
    );
    expect(cfg.receivers.get('otlp')!.config).toEqual({
      protocols: { grpc: { endpoint: '127.0.0.1:4317', max_recv_msg_size_mib: 4 }, http: { endpoint: '127.0.0.1:4318' } },
    });
    expect(cfg.processors.get('batch')!.config).toEqual({ send_batch_size: 512, timeout: '200ms' });
    expect(cfg.exporters.get('file')!.config).toEqual({ path: './data/traces.jsonl', rotation: { max_megabytes: 100 } });
    expect(cfg.receivers.get('otlp')!.factory).toBe(fakeFactories.receivers[0]);
    expect(cfg.service).toEqual({
      pipelines: { traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['file'] } },
      telemetry: { logs: { level: 'info' }, metrics: { address: '127.0.0.1:8888' }, summaryIntervalMs: 60_000 },
      shutdownTimeoutMs: 10_000,
      shutdownDelayMs: 2_000,
      configWatch: true,
    });
    expect(cfg.warnings).toEqual([]);
    expect(cfg.file).toBe('config.yaml');
  });

  it('keeps values that are written, converting types where the schema asks', () => {
    const cfg = loadConfigText(
      lines(
        'receivers:',
        '  otlp:',
        'exporters:',
        '  otlp:',
        '    endpoint: backend:4317',
        '    compression: none',
        '    timeout: 1500', // a number of milliseconds
        '    sending_queue: { queue_size: "250" }',
        '    headers:',
        '      x-tenant: acme',
        'service:',
        '  pipelines:',
        '    traces:',
        '      receivers: [otlp]',
        '      processors:', // empty list
        '      exporters: [otlp]',
        '  telemetry:',
        '    logs: { level: debug }',
        '    metrics: { address: "0.0.0.0:9464" }',
        '    summary_interval: 1m30s',
        '  shutdown_timeout: 2500ms',
      ),
      'config.yaml',
      opts(),
    );
    expect(cfg.exporters.get('otlp')!.config).toEqual({
      endpoint: 'backend:4317',
      compression: 'none',
      timeout: 1500,
      sending_queue: { queue_size: 250 },
      headers: { 'x-tenant': 'acme' },
      tls: { insecure: false },
    });
    expect(cfg.service.pipelines.traces.processors).toEqual([]);
    expect(cfg.service.telemetry).toEqual({ logs: { level: 'debug' }, metrics: { address: '0.0.0.0:9464' }, summaryIntervalMs: 90_000 });
    expect(cfg.service.shutdownTimeoutMs).toBe(2500);
  });

  it('substitutes environment variables, with and without defaults', () => {
    const text = lines(
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      grpc:',
      '        endpoint: ${env:GRPC_ADDR:-127.0.0.1:4317}',
      '      http:',
      '        endpoint: "${env:HTTP_HOST:-127.0.0.1}:${env:HTTP_PORT}"',
      'exporters:',
      '  otlp:',
      '    endpoint: ${env:BACKEND}',
      '    headers:',
      '      authorization: "Bearer ${env:TOKEN}"',
      '      x-literal: "$${env:NOT_SUBSTITUTED}"',
      '    sending_queue:',
      '      queue_size: ${env:QUEUE_SIZE}',
      ...SERVICE.slice(0, 4),
      '      exporters: [otlp]',
    );
    const cfg = loadConfigText(
      text,
      'config.yaml',
      opts({ HTTP_HOST: '', HTTP_PORT: '14318', BACKEND: 'tempo:4317', TOKEN: 's3cr3t', QUEUE_SIZE: '64' }),
    );
    expect(cfg.receivers.get('otlp')!.config).toEqual({
      protocols: { grpc: { endpoint: '127.0.0.1:4317', max_recv_msg_size_mib: 4 }, http: { endpoint: '127.0.0.1:14318' } },
    });
    const exp = cfg.exporters.get('otlp')!.config as Record<string, unknown>;
    expect(exp.endpoint).toBe('tempo:4317');
    expect(exp.headers).toEqual({ authorization: 'Bearer s3cr3t', 'x-literal': '${env:NOT_SUBSTITUTED}' });
    expect(exp.sending_queue).toEqual({ queue_size: 64 }); // a string from the environment, converted to the integer the schema wants

    // A set variable wins over the default.
    const cfg2 = loadConfigText(text, 'config.yaml', opts({ GRPC_ADDR: '0.0.0.0:4317', HTTP_PORT: '4318', BACKEND: 'b:1', TOKEN: 't', QUEUE_SIZE: '1' }));
    expect((cfg2.receivers.get('otlp')!.config as { protocols: { grpc: { endpoint: string } } }).protocols.grpc.endpoint).toBe('0.0.0.0:4317');
  });

  it('hashes the text after substitution', () => {
    const text = lines('receivers:', '  otlp:', 'exporters:', '  debug:', '    verbosity: ${env:VERBOSITY}', ...SERVICE);
    const a = loadConfigText(text, 'config.yaml', opts({ VERBOSITY: 'basic' }));
    const b = loadConfigText(text, 'config.yaml', opts({ VERBOSITY: 'basic' }));
    const c = loadConfigText(text, 'config.yaml', opts({ VERBOSITY: 'detailed' }));
    const plain = loadConfigText(text.replace('${env:VERBOSITY}', 'basic'), 'config.yaml', opts());
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).not.toBe(a.hash);
    expect(plain.hash).toBe(a.hash);
  });

  it('accepts type/name ids, gives each its own config, and warns about unused components', () => {
    const cfg = loadConfigText(
      lines(
        'receivers:',
        '  otlp:',
        'exporters:',
        '  otlp/primary:',
        '    endpoint: a:4317',
        '  otlp/secondary:',
        '    endpoint: b:4317',
        '    compression: none',
        '  debug/spare:',
        'service:',
        '  pipelines:',
        '    traces:',
        '      receivers: [otlp]',
        '      exporters: [otlp/primary, otlp/secondary]',
      ),
      'config.yaml',
      opts(),
    );
    expect([...cfg.exporters.keys()]).toEqual(['otlp/primary', 'otlp/secondary', 'debug/spare']);
    const secondary = cfg.exporters.get('otlp/secondary')!;
    expect(secondary).toMatchObject({ id: 'otlp/secondary', type: 'otlp', name: 'secondary', factory: fakeFactories.exporters[0] });
    expect(secondary.config).toMatchObject({ endpoint: 'b:4317', compression: 'none' });
    expect(cfg.exporters.get('otlp/primary')!.config).toMatchObject({ endpoint: 'a:4317', compression: 'gzip' });
    expect(cfg.receivers.get('otlp')).toMatchObject({ id: 'otlp', type: 'otlp', name: '' });
    expect(cfg.warnings).toEqual(['config.yaml:9:3: exporters.debug/spare: defined but not used in any of service.pipelines']);
  });

  it('resolves YAML anchors and aliases', () => {
    const cfg = loadConfigText(
      lines(
        'receivers:',
        '  otlp:',
        'exporters:',
        '  otlp/a:',
        '    endpoint: a:4317',
        '    sending_queue: &queue { queue_size: 50 }',
        '  otlp/b:',
        '    endpoint: b:4317',
        '    sending_queue: *queue',
        'service:',
        '  pipelines:',
        '    traces:',
        '      receivers: [otlp]',
        '      exporters: [otlp/a, otlp/b]',
      ),
      'config.yaml',
      opts(),
    );
    expect(cfg.exporters.get('otlp/b')!.config).toMatchObject({ endpoint: 'b:4317', sending_queue: { queue_size: 50 } });
  });

  it('loads a file from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
    try {
      const path = join(dir, 'collector.yaml');
      writeFileSync(path, lines('receivers:', '  otlp:', 'exporters:', '  debug:', ...SERVICE));
      const cfg = loadConfigFile(path, opts());
      expect(cfg.file).toBe(path);
      expect([...cfg.exporters.keys()]).toEqual(['debug']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not share default objects between components', () => {
    const cfg = loadConfigText(lines('receivers:', '  otlp:', '  otlp/b:', 'exporters:', '  debug:', ...SERVICE), 'config.yaml', opts());
    const a = cfg.receivers.get('otlp')!.config as { protocols: object };
    const b = cfg.receivers.get('otlp/b')!.config as { protocols: object };
    expect(a.protocols).toEqual(b.protocols);
    expect(a.protocols).not.toBe(b.protocols);
  });
});

describe('substituteEnv', () => {
  it('handles defaults, empty values, escapes and repeated references', () => {
    const env = { A: 'x', EMPTY: '' };
    expect(substituteEnv('${env:A}-${env:A}', env)).toBe('x-x');
    expect(substituteEnv('${env:EMPTY:-d}', env)).toBe('d');
    expect(substituteEnv('${env:EMPTY}', env)).toBe('');
    expect(substituteEnv('${env:MISSING:-a:b}', env)).toBe('a:b');
    expect(substituteEnv('$${env:A}', env)).toBe('${env:A}');
    expect(substituteEnv('${other}', env)).toBe('${other}');
    const issues: Array<{ message: string }> = [];
    substituteEnv('${env:MISSING} ${env:', env, issues as never);
    expect(issues.map((i) => i.message)).toEqual([
      'environment variable "MISSING" is not set and the reference gives no default',
      'unterminated environment reference "${env:": expected ${env:NAME} or ${env:NAME:-default}',
    ]);
  });
});

describe('suggestions', () => {
  it('counts a transposition as one edit and picks plausible typos only', () => {
    expect(editDistance('otpl', 'otlp')).toBe(1);
    expect(editDistance('endpont', 'endpoint')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(closest('otpl', ['file', 'otlp', 'debug'])).toBe('otlp');
    expect(closest('Endpoint', ['endpoint'])).toBe('endpoint');
    expect(closest('zipkin', ['otlp', 'file'])).toBeUndefined();
  });
});
