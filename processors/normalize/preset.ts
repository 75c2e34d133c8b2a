/**
 * `preset: recommended`: semantic-convention migration, PII redaction,
 * templating of span names and URL paths, and truncation. The rules below are
 * the exact contents (README.md lists them too); they run before the user's
 * own rules.
 */
import { fillDefaults } from '../../config/fill-defaults.js';
import { Rule, type NormalizeConfig, type RuleConfig } from './config.js';

/** Keys whose whole value is a credential. */
export const SECRET_KEY_PATTERN =
  '(?i)(^|[._-])(password|passwd|pwd|secret|client[_-]?secret|api[_-]?key|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|authorization|proxy-authorization|cookie|set-cookie|session[_-]?id)$';

export const PRIORITY_KEYS = [
  'http.request.method',
  'http.response.status_code',
  'http.route',
  'url.path',
  'url.full',
  'server.address',
  'server.port',
  'error.type',
  'db.system',
  'db.namespace',
  'db.operation.name',
  'rpc.system',
  'rpc.service',
  'rpc.method',
  'messaging.system',
  'exception.type',
  'exception.message',
];

export const RECOMMENDED_RULES: readonly RuleConfig[] = [
  { name: 'preset.semconv', scope: 'span', semconv: { mode: 'replace' } },
  {
    name: 'preset.redact',
    scope: ['span', 'event', 'span_name'],
    redact: { key_pattern: SECRET_KEY_PATTERN, detectors: ['email', 'credit_card', 'bearer', 'jwt'], url_query: 'sensitive', action: 'mask' },
  },
  { name: 'preset.template_span_names', scope: 'span_name', template: {} },
  { name: 'preset.template_url_paths', scope: 'span', template: { keys: ['url.path'] } },
  { name: 'preset.truncate', scope: ['span', 'event', 'span_name'], truncate: { max_length: 4096, max_attributes: 128, priority_keys: PRIORITY_KEYS } },
] as unknown as RuleConfig[];

/** The preset rules with every default filled in. */
export function recommendedRules(): RuleConfig[] {
  return RECOMMENDED_RULES.map((r) => fillDefaults(Rule, structuredClone(r)));
}

/** The full ordered rule list: preset rules, then the user's. */
export function effectiveRules(config: NormalizeConfig): Array<{ rule: RuleConfig; label: string }> {
  const out: Array<{ rule: RuleConfig; label: string }> = [];
  if (config.preset === 'recommended') for (const r of recommendedRules()) out.push({ rule: r, label: r.name ?? 'preset' });
  config.rules.forEach((r, i) => out.push({ rule: r, label: r.name ?? String(i) }));
  return out;
}
