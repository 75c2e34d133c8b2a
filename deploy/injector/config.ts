/**
 * The injector's settings: built-in defaults, then an optional YAML file
 * (`--config` / INJECTOR_CONFIG), then INJECTOR_* environment variables, then
 * command-line flags. Every option has all three spellings:
 *   file key `memory_limit`, env `INJECTOR_MEMORY_LIMIT`, flag `--memory-limit`.
 * The table below is the single description that drives parsing, errors and
 * the README.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseDuration, DURATION_PATTERN } from '../../config/duration.js';
import { parseQuantity } from './quantity.js';

export interface InjectorConfig {
  listen_address: string;
  tls_cert_file: string;
  tls_key_file: string;
  tls_reload_interval: number; // ms
  log_level: string;
  image: string;
  image_pull_policy: string;
  container_name: string;
  config_map: string;
  config_map_key: string;
  kubernetes_version: string;
  native_sidecar: 'auto' | 'true' | 'false';
  namespace_defaults: Record<string, string>;
  cpu_request: string;
  memory_request: string;
  cpu_limit: string;
  memory_limit: string;
  heap_mib: number;
  buffer_size_limit: string;
  run_as_user: number;
  config_mount_path: string;
  buffer_mount_path: string;
}

type Kind = 'string' | 'int' | 'duration' | 'quantity' | 'tristate' | 'map';

interface Option {
  key: keyof InjectorConfig;
  kind: Kind;
  default: string;
  optionalQuantity?: boolean;
  help: string;
}

export const OPTIONS: readonly Option[] = [
  { key: 'listen_address', kind: 'string', default: '0.0.0.0:8443', help: 'HTTPS listen address (host:port).' },
  { key: 'tls_cert_file', kind: 'string', default: '/etc/sidecar-injector/tls/tls.crt', help: 'PEM certificate (chain) served to the API server.' },
  { key: 'tls_key_file', kind: 'string', default: '/etc/sidecar-injector/tls/tls.key', help: 'PEM private key of the certificate.' },
  { key: 'tls_reload_interval', kind: 'duration', default: '10s', help: 'How often the certificate and key files are re-read; a changed, valid pair is served to new connections.' },
  { key: 'log_level', kind: 'string', default: 'info', help: 'pino log level.' },
  { key: 'image', kind: 'string', default: 'sidecar-collector:0.1.0', help: 'Collector image of the injected container.' },
  { key: 'image_pull_policy', kind: 'string', default: 'IfNotPresent', help: 'imagePullPolicy of the injected container.' },
  { key: 'container_name', kind: 'string', default: 'sidecar-collector', help: 'Name of the injected container; a pod that already has a container of this name is left alone.' },
  { key: 'config_map', kind: 'string', default: 'sidecar-collector-config', help: 'ConfigMap mounted when the annotation is "true".' },
  { key: 'config_map_key', kind: 'string', default: 'config.yaml', help: 'Key of the collector config inside the ConfigMap.' },
  { key: 'kubernetes_version', kind: 'string', default: '', help: 'Cluster version ("1.30"); with native_sidecar auto, 1.29 or later selects a native sidecar.' },
  { key: 'native_sidecar', kind: 'tristate', default: 'auto', help: 'true: init container with restartPolicy Always; false: classic second container; auto: decided by kubernetes_version (classic when unknown).' },
  { key: 'namespace_defaults', kind: 'map', default: '', help: 'Per-namespace default annotation value ("ns=true,ns2=my-config"); a pod annotation beats it.' },
  { key: 'cpu_request', kind: 'quantity', default: '50m', help: 'CPU request of the sidecar.' },
  { key: 'memory_request', kind: 'quantity', default: '64Mi', help: 'Memory request of the sidecar.' },
  { key: 'cpu_limit', kind: 'quantity', default: '', optionalQuantity: true, help: 'CPU limit of the sidecar (none by default: throttling a sidecar adds latency to the app).' },
  { key: 'memory_limit', kind: 'quantity', default: '256Mi', help: 'Memory limit of the sidecar.' },
  { key: 'heap_mib', kind: 'int', default: '0', help: 'V8 old-space size in MiB (NODE_OPTIONS=--max-old-space-size); 0 derives 62.5% of memory_limit, leaving room for off-heap span buffers.' },
  { key: 'buffer_size_limit', kind: 'quantity', default: '1Gi', help: 'sizeLimit of the emptyDir disk buffer (the collector must be configured to stay below it).' },
  { key: 'run_as_user', kind: 'int', default: '10001', help: 'Non-root uid/gid of the sidecar.' },
  { key: 'config_mount_path', kind: 'string', default: '/etc/collector', help: 'Directory the ConfigMap is mounted at (a directory, never subPath, so updates propagate).' },
  { key: 'buffer_mount_path', kind: 'string', default: '/var/lib/sidecar-collector', help: 'Directory the emptyDir buffer is mounted at.' },
];

export class InjectorConfigError extends Error {}

const envName = (key: string): string => `INJECTOR_${key.toUpperCase()}`;
const flagName = (key: string): string => `--${key.replace(/_/g, '-')}`;

function parseMap(raw: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === '' || raw === undefined || raw === null) return out;
  if (typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new InjectorConfigError(`${where}.${k}: must be a string (quote "true"/"false" in YAML)`);
      out[k] = v;
    }
    return out;
  }
  if (typeof raw !== 'string') throw new InjectorConfigError(`${where}: must be a map or "ns=value,..."`);
  for (const part of raw.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InjectorConfigError(`${where}: "${item}" is not namespace=value`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

function coerce(opt: Option, raw: unknown, where: string): unknown {
  switch (opt.kind) {
    case 'map':
      return parseMap(raw, where);
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < 0) throw new InjectorConfigError(`${where}: must be a non-negative integer, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'duration': {
      const s = typeof raw === 'number' ? raw : String(raw);
      if (typeof s === 'string' && !new RegExp(DURATION_PATTERN).test(s)) throw new InjectorConfigError(`${where}: invalid duration ${JSON.stringify(raw)}`);
      const ms = parseDuration(s);
      if (ms <= 0) throw new InjectorConfigError(`${where}: must be greater than zero`);
      return ms;
    }
    case 'tristate': {
      const s = String(raw).toLowerCase();
      if (s !== 'auto' && s !== 'true' && s !== 'false') throw new InjectorConfigError(`${where}: must be true, false or auto`);
      return s;
    }
    case 'quantity': {
      const s = typeof raw === 'number' ? String(raw) : raw;
      if (typeof s !== 'string') throw new InjectorConfigError(`${where}: must be a quantity string`);
      if (s === '' && opt.optionalQuantity) return '';
      const v = parseQuantity(s);
      if (v === undefined || v <= 0) throw new InjectorConfigError(`${where}: invalid quantity ${JSON.stringify(raw)}`);
      return s;
    }
    default:
      if (typeof raw !== 'string') throw new InjectorConfigError(`${where}: must be a string`);
      return raw;
  }
}

function suggest(key: string): string {
  let best = '';
  let bestScore = Infinity;
  for (const o of OPTIONS) {
    const d = editDistance(key, o.key);
    if (d < bestScore) {
      bestScore = d;
      best = o.key;
    }
  }
  return bestScore <= 3 ? `; did you mean ${best}?` : '';
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/**
 * Builds the configuration from defaults, file, env and argv (argv without
 * the node and script entries). Throws InjectorConfigError naming the source
 * and key of the first problem.
 */
export function loadInjectorConfig(argv: readonly string[] = [], env: NodeJS.ProcessEnv = {}): InjectorConfig {
  const byKey = new Map(OPTIONS.map((o) => [o.key as string, o]));
  const values = new Map<string, unknown>();
  for (const o of OPTIONS) values.set(o.key, coerce(o, o.default, `default ${o.key}`));

  // flags first into a list, so --config can be found before applying layers.
  const flags: Array<[string, string]> = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new InjectorConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    let name: string;
    let value: string;
    if (eq > 0) {
      name = arg.slice(2, eq);
      value = arg.slice(eq + 1);
    } else {
      name = arg.slice(2);
      if (i + 1 >= argv.length) throw new InjectorConfigError(`flag --${name} needs a value`);
      value = argv[++i];
    }
    flags.push([name.replace(/-/g, '_'), value]);
  }

  const configFile = flags.find(([k]) => k === 'config')?.[1] ?? env.INJECTOR_CONFIG;
  if (configFile) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(configFile, 'utf8'));
    } catch (err) {
      throw new InjectorConfigError(`${configFile}: ${(err as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new InjectorConfigError(`${configFile}: top level must be a map`);
      for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
        const o = byKey.get(k);
        if (!o) throw new InjectorConfigError(`${configFile}: unknown key ${k}${suggest(k)}`);
        values.set(k, coerce(o, v, `${configFile}: ${k}`));
      }
    }
  }
  for (const o of OPTIONS) {
    const v = env[envName(o.key)];
    if (v !== undefined) values.set(o.key, coerce(o, v, `env ${envName(o.key)}`));
  }
  for (const [k, v] of flags) {
    if (k === 'config') continue;
    const o = byKey.get(k);
    if (!o) throw new InjectorConfigError(`unknown flag ${flagName(k)}${suggest(k)}`);
    values.set(k, coerce(o, v, `flag ${flagName(k)}`));
  }
  const cfg = Object.fromEntries(values) as unknown as InjectorConfig;
  if (cfg.kubernetes_version && !/^v?[0-9]+\.[0-9]+/.test(cfg.kubernetes_version)) {
    throw new InjectorConfigError(`kubernetes_version: expected MAJOR.MINOR such as "1.30", got "${cfg.kubernetes_version}"`);
  }
  if (!/^\/./.test(cfg.config_mount_path) || !/^\/./.test(cfg.buffer_mount_path)) {
    throw new InjectorConfigError('config_mount_path and buffer_mount_path must be absolute paths');
  }
  if (!['Always', 'IfNotPresent', 'Never'].includes(cfg.image_pull_policy)) {
    throw new InjectorConfigError(`image_pull_policy: must be Always, IfNotPresent or Never`);
  }
  return cfg;
}

/** Whether the injected container is a native sidecar (K8s >= 1.29) or a classic second container. */
export function useNativeSidecar(cfg: Pick<InjectorConfig, 'native_sidecar' | 'kubernetes_version'>): boolean {
  if (cfg.native_sidecar === 'true') return true;
  if (cfg.native_sidecar === 'false') return false;
  const m = /^v?([0-9]+)\.([0-9]+)/.exec(cfg.kubernetes_version);
  if (!m) return false; // unknown cluster: the classic container works everywhere
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 1 || (major === 1 && minor >= 29);
}

/** Heap size for NODE_OPTIONS: explicit, or 62.5% of the memory limit (at least 32 MiB). */
export function heapMiB(cfg: Pick<InjectorConfig, 'heap_mib' | 'memory_limit'>): number {
  if (cfg.heap_mib > 0) return cfg.heap_mib;
  const bytes = parseQuantity(cfg.memory_limit) ?? 256 * 2 ** 20;
  return Math.max(32, Math.floor((bytes / 2 ** 20) * 0.625));
}

/** Markdown table of all options (used to keep the README honest in a test). */
export function optionsTable(): string {
  const rows = OPTIONS.map(
    (o) => `| \`${o.key}\` | \`${envName(o.key)}\` | \`${flagName(o.key)}\` | ${o.default === '' ? '(none)' : `\`${o.default}\``} | ${o.help} |`,
  );
  return ['| file key | env | flag | default | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}
