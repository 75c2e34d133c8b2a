import { describe, expect, it } from 'vitest';
import { loadConfigText, ConfigError } from './load.js';

const lines = (...l: string[]) => l.join('\n') + '\n';

function problems(text: string): string[] {
  try {
    loadConfigText(text, 'config.yaml', { env: {} });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

describe('pipelines by signal', () => {
  it('accepts traces, logs, metrics and named pipelines sharing a receiver and an exporter', () => {
    const cfg = loadConfigText(
      lines(
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
        '      exporters: [debug]',
        '    logs/app:',
        '      receivers: [otlp]',
        '      processors: [batch]',
        '      exporters: [debug]',
        '    metrics:',
        '      receivers: [otlp]',
        '      exporters: [debug]',
      ),
      'config.yaml',
      { env: {} },
    );
    expect(Object.keys(cfg.service.pipelines)).toEqual(['traces', 'logs/app', 'metrics']);
    expect(cfg.service.pipelines['logs/app'].processors).toEqual(['batch']);
  });

  it('refuses a component in a pipeline of a signal its type does not support, with line and key', () => {
    const text = lines(
      'receivers:',
      '  otlp:',
      'processors:',
      '  tail_sampling:',
      '    policies: [{ name: all, type: always_sample }]',
      'exporters:',
      '  debug:',
      'service:',
      '  pipelines:',
      '    metrics:',
      '      receivers: [otlp]',
      '      processors: [tail_sampling]',
      '      exporters: [debug]',
    );
    const p = problems(text);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /^config\.yaml:12:20: service\.pipelines\.metrics\.processors\[0\]: processor "tail_sampling" \(type tail_sampling\) does not support metrics; it can be used in traces(, logs)? pipelines$/,
    );
  });

  it('refuses an unknown pipeline signal and an empty pipelines map', () => {
    const bad = lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'service:', '  pipelines:', '    log:', '      receivers: [otlp]', '      exporters: [debug]');
    expect(problems(bad)[0]).toMatch(/^config\.yaml:7:5: service\.pipelines\.log: unknown pipeline "log".*did you mean "logs"/);
    const empty = lines('receivers:', '  otlp:', 'exporters:', '  debug:', 'service:', '  pipelines: {}');
    expect(problems(empty)[0]).toMatch(/service\.pipelines/);
  });
});
