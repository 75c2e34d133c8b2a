/**
 * The bundle validates configs with validators precompiled at build time and
 * falls back to compiling them with Ajv when one is missing (a bundle run
 * against an older or partial `dist/config/validators`). This runs the
 * built bundle from a copy of `dist/` without the precompiled validators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const BUNDLE = path.join(ROOT, 'dist', 'collector', 'sidecar.mjs');

describe.skipIf(!fs.existsSync(BUNDLE))('config validation without precompiled validators', () => {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'validators-fallback-'));
    fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
    fs.rmSync(path.join(dir, 'dist', 'config', 'validators'), { recursive: true, force: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const validate = (file: string) =>
    spawnSync(process.execPath, [path.join(dir, 'dist', 'collector', 'sidecar.mjs'), 'validate', '--config', file], { encoding: 'utf8' });

  it('accepts the default config through the Ajv fallback', () => {
    const r = validate(path.join(ROOT, 'config', 'default.yaml'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('valid');
    expect(r.status).toBe(0);
  });

  it('still names the line and key of a bad value', () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      bad,
      ['receivers:', '  otlp:', '    protocols:', '      grpc:', '        max_recv_msg_size_mib: -1', 'exporters:', '  debug: {}', 'service:', '  pipelines:', '    traces:', '      receivers: [otlp]', '      exporters: [debug]', ''].join('\n'),
    );
    const r = validate(bad);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:5/);
    expect(r.stderr).toContain('max_recv_msg_size_mib');
  });
});
