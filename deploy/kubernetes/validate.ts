/**
 * Checks the Kubernetes manifests in deploy/ without a cluster.
 *
 * 1. Each object against its kind's OpenAPI schema, by kubernetes-models
 *    (types, required fields, enums, quantities, int-or-string): an
 *    apiVersion/kind it has no model for is reported too.
 * 2. What no schema can express: how fields refer to each other.
 *    - Inside one object: a workload's selector matches its pod template's
 *      labels; volume mounts name volumes the pod defines; probes and
 *      lifecycle hooks name ports the container declares; container names
 *      are unique across containers and init containers; a resource
 *      request is not above its limit; only init containers set
 *      restartPolicy, only `Always` (native sidecars), and only native
 *      sidecars take probes and lifecycle hooks; a Job's pods restart Never
 *      or OnFailure; `runAsNonRoot` is not paired with `runAsUser: 0`.
 *    - Across the documents of one set (`crossReferences`): namespaces are
 *      created, a Service selects a pod template and its named target ports
 *      exist there, a webhook's Service and port exist, a binding's role
 *      exists, a pod's ServiceAccount exists, a ConfigMap volume's ConfigMap
 *      and keys exist.
 *
 * The schemas of kubernetes-models accept fields they do not define, so a
 * misspelt field passes here; schemas.test.ts type-checks the manifests
 * against kubernetes-models' TypeScript types, where it is an error.
 *
 * CLI: node dist/deploy/kubernetes/validate.js FILE...   (exit 1 on problems)
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';
import * as coreV1 from 'kubernetes-models/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as admissionV1 from 'kubernetes-models/admissionregistration.k8s.io/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import { parseQuantity } from '../injector/quantity.js';

export interface ManifestProblem {
  /** "Kind/name" of the object, or "document N" when unknown. */
  object: string;
  /** Dotted path inside the object. */
  path: string;
  message: string;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const objAt = (v: unknown): Obj => (isObj(v) ? v : {});

/** The API groups whose kinds the manifests may use: apiVersion -> kind -> model. */
const GROUPS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'batch/v1': batchV1,
  'policy/v1': policyV1,
  'rbac.authorization.k8s.io/v1': rbacV1,
  'admissionregistration.k8s.io/v1': admissionV1,
  'networking.k8s.io/v1': networkingV1,
  'autoscaling/v2': autoscalingV2,
};

type Model = new (o: unknown) => { validate(): void };
interface SchemaError {
  instancePath?: string;
  message?: string;
}

class Ctx {
  constructor(
    readonly object: string,
    private readonly problems: ManifestProblem[],
  ) {}
  err(path: string, message: string): void {
    this.problems.push({ object: this.object, path, message });
  }
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** "/spec/template/spec/containers/0/env/0/value" -> "spec.template.spec.containers[0].env[0].value" */
function pointerToPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = join(path, /^[0-9]+$/.test(seg) ? Number(seg) : seg);
  }
  return path;
}

/** Problems of one object against its kind's schema (kubernetes-models), relations not included. */
export function schemaProblems(o: unknown): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const c = new Ctx(describe(o, 0), problems);
  if (isObj(o)) checkSchema(o, c);
  else c.err('', 'a manifest document must be an object');
  return problems;
}

/** The kind's schema, through kubernetes-models. */
function checkSchema(o: Obj, c: Ctx): boolean {
  const model = GROUPS[String(o.apiVersion)]?.[String(o.kind)] as Model | undefined;
  if (typeof model !== 'function') {
    c.err('apiVersion', `unknown apiVersion/kind ${String(o.apiVersion)} ${String(o.kind)}`);
    return false;
  }
  try {
    new model(o).validate();
  } catch (e) {
    const errors = (e as { errors?: SchemaError[] }).errors;
    if (!Array.isArray(errors)) c.err('', String((e as Error).message));
    else {
      // One line per path; a oneOf's own "must match exactly one schema" adds nothing to its branches' messages.
      const byPath = new Map<string, string[]>();
      for (const se of errors) {
        const path = pointerToPath(se.instancePath ?? '');
        const msgs = byPath.get(path) ?? [];
        const m = se.message ?? 'invalid';
        if (!msgs.includes(m)) msgs.push(m);
        byPath.set(path, msgs);
      }
      for (const [path, msgs] of byPath) {
        const specific = msgs.filter((m) => !m.startsWith('must match exactly one schema'));
        c.err(path, (specific.length > 0 ? specific : msgs).join('; '));
      }
    }
  }
  return true;
}

// ---------- relations inside one object ----------

/** Whether a label selector (matchLabels / matchExpressions) selects the given labels. */
export function selectorMatches(sel: Obj, labels: Obj): boolean {
  for (const [k, v] of Object.entries(objAt(sel.matchLabels))) if (labels[k] !== v) return false;
  for (const e of list(sel.matchExpressions)) {
    if (!isObj(e)) return false;
    const key = String(e.key);
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    const values = list(e.values);
    if (e.operator === 'In' && !(has && values.includes(labels[key]))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** A pod template of a workload kind, or the pod itself: [path of the pod spec, template labels]. */
function podSpecOf(o: Obj): { path: string; spec: Obj; labels: Obj } | undefined {
  if (o.kind === 'Pod') return { path: 'spec', spec: objAt(o.spec), labels: objAt(objAt(o.metadata).labels) };
  const tpl = objAt(o.spec).template;
  if (!isObj(tpl)) return undefined;
  return { path: 'spec.template.spec', spec: objAt(tpl.spec), labels: objAt(objAt(tpl.metadata).labels) };
}

function checkRelations(o: Obj, c: Ctx): void {
  const pod = podSpecOf(o);
  if (pod === undefined) return;
  const spec = objAt(o.spec);
  if (o.kind !== 'Pod' && o.kind !== 'Job' && isObj(spec.selector)) {
    const sel = spec.selector;
    if (Object.keys(objAt(sel.matchLabels)).length === 0 && list(sel.matchExpressions).length === 0) c.err('spec.selector', 'must not be empty');
    else if (!selectorMatches(sel, pod.labels)) c.err('spec.selector', 'does not match spec.template.metadata.labels');
  }
  if (o.kind === 'Job' && pod.spec.restartPolicy !== 'Never' && pod.spec.restartPolicy !== 'OnFailure') {
    c.err(join(pod.path, 'restartPolicy'), 'a Job needs Never or OnFailure');
  }
  checkPodSpec(pod.spec, pod.path, c);
}

function checkPodSpec(spec: Obj, path: string, c: Ctx): void {
  const volumes = new Set<string>();
  for (const v of list(spec.volumes)) if (isObj(v) && typeof v.name === 'string') volumes.add(v.name);
  const podNonRoot = objAt(spec.securityContext).runAsNonRoot;
  const names = new Set<string>();
  for (const [field, init] of [
    ['initContainers', true],
    ['containers', false],
  ] as const) {
    list(spec[field]).forEach((ct, i) => {
      if (!isObj(ct)) return;
      const p = join(join(path, field), i);
      if (typeof ct.name === 'string') {
        if (names.has(ct.name)) c.err(join(p, 'name'), `duplicate container name "${ct.name}"`);
        names.add(ct.name);
      }
      checkContainer(ct, p, c, init, volumes, podNonRoot);
    });
  }
}

const HOOKS = ['livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle'] as const;

function checkContainer(ct: Obj, path: string, c: Ctx, init: boolean, volumes: ReadonlySet<string>, podNonRoot: unknown): void {
  // Native sidecars: only init containers take restartPolicy, only "Always"; only they take probes and hooks.
  if (ct.restartPolicy !== undefined) {
    if (!init) c.err(join(path, 'restartPolicy'), 'only init containers may set restartPolicy (native sidecars)');
    else if (ct.restartPolicy !== 'Always') c.err(join(path, 'restartPolicy'), `must be one of Always, got ${JSON.stringify(ct.restartPolicy)}`);
  }
  if (init && ct.restartPolicy !== 'Always') {
    for (const k of HOOKS) if (ct[k] !== undefined) c.err(join(path, k), `init containers may set ${k} only as native sidecars (restartPolicy: Always)`);
  }

  list(ct.volumeMounts).forEach((m, i) => {
    if (isObj(m) && typeof m.name === 'string' && !volumes.has(m.name)) {
      c.err(join(join(path, 'volumeMounts'), i), `mounts volume "${m.name}", which the pod does not define`);
    }
  });

  const ports = new Set<string>();
  for (const p of list(ct.ports)) if (isObj(p) && typeof p.name === 'string') ports.add(p.name);
  const namedPort = (port: unknown, p: string) => {
    if (typeof port === 'string' && !ports.has(port)) c.err(p, `names port "${port}", which the container does not declare`);
  };
  for (const k of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const probe = objAt(ct[k]);
    namedPort(objAt(probe.httpGet).port, join(path, `${k}.httpGet.port`));
    namedPort(objAt(probe.tcpSocket).port, join(path, `${k}.tcpSocket.port`));
  }
  for (const k of ['postStart', 'preStop'] as const) {
    const h = objAt(objAt(ct.lifecycle)[k]);
    namedPort(objAt(h.httpGet).port, join(path, `lifecycle.${k}.httpGet.port`));
    namedPort(objAt(h.tcpSocket).port, join(path, `lifecycle.${k}.tcpSocket.port`));
  }

  const res = objAt(ct.resources);
  for (const [name, req] of Object.entries(objAt(res.requests))) {
    const lim = objAt(res.limits)[name];
    if (lim === undefined) continue;
    const r = quantity(req);
    const l = quantity(lim);
    if (r !== undefined && l !== undefined && r > l) c.err(join(join(path, 'resources.requests'), name), `request ${r} is above the limit ${l}`);
  }

  const sc = objAt(ct.securityContext);
  if ((sc.runAsNonRoot ?? podNonRoot) === true && sc.runAsUser === 0) {
    c.err(join(path, 'securityContext.runAsUser'), 'runAsNonRoot is true but runAsUser is 0: the kubelet will not start the container');
  }
}

function quantity(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  try {
    return parseQuantity(v);
  } catch {
    return undefined; // malformed: the schema reports it
  }
}

// ---------- documents and cross references ----------

function describe(o: unknown, index: number): string {
  if (isObj(o) && typeof o.kind === 'string') {
    const name = isObj(o.metadata) ? (o.metadata.name ?? o.metadata.generateName) : undefined;
    return `${o.kind}/${typeof name === 'string' ? name : '?'}`;
  }
  return `document ${index + 1}`;
}

/** Validates already-parsed objects. `crossReferences` checks references between them (a complete set). */
export function validateObjects(objects: readonly unknown[], opts: { crossReferences?: boolean } = {}): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  objects.forEach((o, i) => {
    const c = new Ctx(describe(o, i), problems);
    if (!isObj(o)) {
      c.err('', 'a manifest document must be an object');
      return;
    }
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') {
      c.err(typeof o.apiVersion !== 'string' ? 'apiVersion' : 'kind', 'required');
      return;
    }
    if (checkSchema(o, c)) checkRelations(o, c);
  });
  if (opts.crossReferences) crossCheck(objects.filter(isObj), problems);
  return problems;
}

interface Workload {
  object: string;
  namespace: string;
  labels: Obj;
  spec: Obj;
}

function crossCheck(objects: Obj[], problems: ManifestProblem[]): void {
  const nsOf = (o: Obj): string => (typeof objAt(o.metadata).namespace === 'string' ? String(objAt(o.metadata).namespace) : 'default');
  const nameOf = (o: Obj): string => (typeof objAt(o.metadata).name === 'string' ? String(objAt(o.metadata).name) : '');
  const key = (kind: string, ns: string, name: string): string => `${kind}/${ns}/${name}`;
  const present = new Set<string>();
  for (const o of objects) present.add(key(String(o.kind), nsOf(o), nameOf(o)));

  const workloads: Workload[] = [];
  for (const o of objects) {
    const pod = podSpecOf(o);
    if (pod) workloads.push({ object: describe(o, 0), namespace: nsOf(o), labels: pod.labels, spec: pod.spec });
  }
  const hasNamespaces = objects.some((o) => o.kind === 'Namespace');
  for (const o of objects) {
    const c = new Ctx(describe(o, 0), problems);
    const ns = nsOf(o);
    if (hasNamespaces && o.kind !== 'Namespace' && typeof objAt(o.metadata).namespace === 'string' && !present.has(key('Namespace', 'default', ns))) {
      c.err('metadata.namespace', `namespace "${ns}" is not created by these manifests`);
    }
    const spec = objAt(o.spec);
    if (o.kind === 'Service' && isObj(spec.selector)) {
      const sel = spec.selector;
      const matched = workloads.filter((w) => w.namespace === ns && Object.entries(sel).every(([k, v]) => w.labels[k] === v));
      if (matched.length === 0) c.err('spec.selector', 'selects no pod template in these manifests');
      list(spec.ports).forEach((port, i) => {
        if (!isObj(port) || typeof port.targetPort !== 'string') return;
        const tp = port.targetPort;
        const ok = matched.some((w) => [...list(w.spec.containers), ...list(w.spec.initContainers)].some((ct) => list(objAt(ct).ports).some((p) => objAt(p).name === tp)));
        if (matched.length > 0 && !ok) c.err(`spec.ports[${i}].targetPort`, `no selected container declares a port named "${tp}"`);
      });
    }
    if (o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration') {
      list(o.webhooks).forEach((w, i) => {
        const svc = objAt(objAt(w).clientConfig).service;
        if (!isObj(svc)) return;
        const target = objects.find((x) => x.kind === 'Service' && nameOf(x) === svc.name && nsOf(x) === svc.namespace);
        if (!target) {
          c.err(`webhooks[${i}].clientConfig.service`, `Service ${String(svc.namespace)}/${String(svc.name)} is not in these manifests`);
          return;
        }
        const port = svc.port ?? 443;
        if (!list(objAt(target.spec).ports).some((p) => objAt(p).port === port)) {
          c.err(`webhooks[${i}].clientConfig.service.port`, `Service ${String(svc.name)} has no port ${String(port)}`);
        }
      });
    }
    if (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') {
      const ref = objAt(o.roleRef);
      const roleNs = ref.kind === 'Role' ? ns : 'default';
      if (!present.has(key(String(ref.kind), roleNs, String(ref.name)))) c.err('roleRef', `${String(ref.kind)} ${String(ref.name)} is not in these manifests`);
    }
  }
  for (const w of workloads) {
    const c = new Ctx(w.object, problems);
    const sa = w.spec.serviceAccountName;
    if (typeof sa === 'string' && sa !== 'default' && !present.has(key('ServiceAccount', w.namespace, sa))) {
      c.err('spec.serviceAccountName', `ServiceAccount ${sa} is not in these manifests`);
    }
    list(w.spec.volumes).forEach((v, i) => {
      const ref = objAt(v).configMap;
      if (!isObj(ref)) return;
      const cmName = String(ref.name);
      const cm = objects.find((x) => x.kind === 'ConfigMap' && nameOf(x) === cmName && nsOf(x) === w.namespace);
      if (!cm) {
        if (ref.optional !== true) c.err(`volumes[${i}].configMap.name`, `ConfigMap ${cmName} is not in these manifests`);
        return;
      }
      const data = objAt(cm.data);
      for (const item of list(ref.items)) {
        if (isObj(item) && !(String(item.key) in data)) c.err(`volumes[${i}].configMap.items`, `ConfigMap ${cmName} has no key "${String(item.key)}"`);
      }
    });
  }
}

/** Parses a multi-document YAML text and validates every document. */
export function validateManifestText(text: string, opts: { crossReferences?: boolean } = {}): { objects: unknown[]; problems: ManifestProblem[] } {
  const problems: ManifestProblem[] = [];
  const objects: unknown[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const docList = Array.isArray(docs) ? docs : [docs];
  docList.forEach((d, i) => {
    for (const e of d.errors) problems.push({ object: `document ${i + 1}`, path: '', message: `YAML: ${e.message}` });
    for (const w of d.warnings) problems.push({ object: `document ${i + 1}`, path: '', message: `YAML: ${w.message}` });
    if (d.errors.length > 0) return;
    const value = d.toJS({ maxAliasCount: 0 });
    if (value !== null && value !== undefined) objects.push(value);
  });
  problems.push(...validateObjects(objects, opts));
  return { objects, problems };
}

export function formatProblem(p: ManifestProblem): string {
  return `${p.object}${p.path ? ` ${p.path}` : ''}: ${p.message}`;
}

/** Validates a single pod object (used by the injector tests on patched pods). */
export function validatePod(pod: unknown): ManifestProblem[] {
  return validateObjects([pod]);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const { problems } = validateManifestText(readFileSync(file, 'utf8'), { crossReferences: true });
    for (const p of problems) process.stdout.write(`${file}: ${formatProblem(p)}\n`);
    if (problems.length > 0) failed = true;
    else process.stdout.write(`${file}: ok\n`);
  }
  process.exitCode = failed ? 1 : 0;
}
