/**
 * A focused structural validator for the Kubernetes kinds used in deploy/.
 *
 * No cluster is available to `kubectl apply --dry-run=server`, and the
 * project has no Kubernetes JSON-schema package, so this checks what the API
 * server would reject (and some mistakes it would silently accept) for the
 * kinds these manifests use: apiVersion/kind pairs, required fields, unknown
 * fields (strict, like `kubeconform -strict`), names and labels, container
 * fields, probe handlers, resource quantities, env sources, volume references,
 * selectors against template labels, native-sidecar rules, webhook rules and
 * cross-references between the documents of one set (Service -> pods,
 * webhook -> Service, volume -> ConfigMap, pod -> ServiceAccount).
 *
 * It is not a full schema: fields it does not know are reported as unknown,
 * so extending a manifest with a new field means extending this table.
 *
 * CLI: node dist/deploy/kubernetes/validate.js FILE...   (exit 1 on problems)
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';
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

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;

export const isDnsLabel = (s: unknown): boolean => typeof s === 'string' && s.length <= 63 && DNS_LABEL.test(s);
export const isDnsSubdomain = (s: unknown): boolean => typeof s === 'string' && s.length <= 253 && DNS_SUBDOMAIN.test(s);

export function isQualifiedName(s: unknown): boolean {
  if (typeof s !== 'string' || s === '') return false;
  const parts = s.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1];
  if (parts.length === 2 && !isDnsSubdomain(parts[0])) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

function isPortName(s: string): boolean {
  return s.length <= 15 && IANA_SVC_NAME.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

const set = (...xs: string[]): ReadonlySet<string> => new Set(xs);

const META_FIELDS = set('name', 'generateName', 'namespace', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'creationTimestamp', 'managedFields', 'uid', 'resourceVersion');
const POD_SPEC_FIELDS = set(
  'volumes', 'initContainers', 'containers', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds',
  'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector', 'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken',
  'nodeName', 'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext', 'imagePullSecrets', 'hostname',
  'subdomain', 'affinity', 'schedulerName', 'tolerations', 'hostAliases', 'priorityClassName', 'priority', 'dnsConfig',
  'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints',
  'setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates', 'resourceClaims', 'resources',
);
const CONTAINER_FIELDS = set(
  'name', 'image', 'command', 'args', 'workingDir', 'ports', 'envFrom', 'env', 'resources', 'resizePolicy', 'restartPolicy',
  'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath',
  'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty',
);
const PROBE_FIELDS = set('exec', 'httpGet', 'tcpSocket', 'grpc', 'initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds');
const CONTAINER_SC_FIELDS = set('capabilities', 'privileged', 'seLinuxOptions', 'windowsOptions', 'runAsUser', 'runAsGroup', 'runAsNonRoot', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'procMount', 'seccompProfile', 'appArmorProfile');
const POD_SC_FIELDS = set('seLinuxOptions', 'windowsOptions', 'runAsUser', 'runAsGroup', 'runAsNonRoot', 'supplementalGroups', 'supplementalGroupsPolicy', 'fsGroup', 'sysctls', 'fsGroupChangePolicy', 'seccompProfile', 'appArmorProfile', 'seLinuxChangePolicy');
const VOLUME_SOURCES = set(
  'configMap', 'secret', 'emptyDir', 'projected', 'downwardAPI', 'persistentVolumeClaim', 'hostPath', 'csi', 'ephemeral', 'nfs', 'image',
  'iscsi', 'fc', 'awsElasticBlockStore', 'gcePersistentDisk', 'azureDisk', 'azureFile', 'cephfs', 'rbd', 'cinder', 'flexVolume', 'glusterfs',
);
const FIELD_PATHS = set('metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs');

/** apiVersion/kind pairs this validator knows, and whether the kind lives in a namespace. */
const KINDS: Record<string, { namespaced: boolean; check: (o: Obj, c: Ctx) => void }> = {
  'v1/Namespace': { namespaced: false, check: checkNamespace },
  'v1/ConfigMap': { namespaced: true, check: checkConfigMap },
  'v1/Secret': { namespaced: true, check: checkSecret },
  'v1/Service': { namespaced: true, check: checkService },
  'v1/ServiceAccount': { namespaced: true, check: (o, c) => c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'automountServiceAccountToken', 'imagePullSecrets', 'secrets')) },
  'v1/Pod': { namespaced: true, check: checkPod },
  'apps/v1/Deployment': { namespaced: true, check: checkDeployment },
  'batch/v1/Job': { namespaced: true, check: checkJob },
  'rbac.authorization.k8s.io/v1/Role': { namespaced: true, check: checkRole },
  'rbac.authorization.k8s.io/v1/ClusterRole': { namespaced: false, check: checkRole },
  'rbac.authorization.k8s.io/v1/RoleBinding': { namespaced: true, check: checkBinding },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { namespaced: false, check: checkBinding },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': { namespaced: false, check: checkMutatingWebhooks },
  'policy/v1/PodDisruptionBudget': { namespaced: true, check: checkPdb },
};

class Ctx {
  constructor(
    readonly object: string,
    readonly problems: ManifestProblem[],
  ) {}

  err(path: string, message: string): void {
    this.problems.push({ object: this.object, path, message });
  }

  fields(o: Obj, path: string, allowed: ReadonlySet<string>): void {
    for (const k of Object.keys(o)) if (!allowed.has(k)) this.err(join(path, k), `unknown field "${k}"`);
  }

  obj(v: unknown, path: string, required = false): Obj | undefined {
    if (v === undefined || v === null) {
      if (required) this.err(path, 'required');
      return undefined;
    }
    if (!isObj(v)) {
      this.err(path, 'must be an object');
      return undefined;
    }
    return v;
  }

  list(v: unknown, path: string, required = false): unknown[] | undefined {
    if (v === undefined || v === null) {
      if (required) this.err(path, 'required');
      return undefined;
    }
    if (!Array.isArray(v)) {
      this.err(path, 'must be a list');
      return undefined;
    }
    return v;
  }

  str(v: unknown, path: string, required = false): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.err(path, 'required');
      return undefined;
    }
    if (typeof v !== 'string') {
      this.err(path, `must be a string, got ${JSON.stringify(v)} (quote it in YAML)`);
      return undefined;
    }
    if (required && v === '') this.err(path, 'must not be empty');
    return v;
  }

  bool(v: unknown, path: string): void {
    if (v !== undefined && typeof v !== 'boolean') this.err(path, `must be a boolean, got ${JSON.stringify(v)}`);
  }

  int(v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER, required = false): number | undefined {
    if (v === undefined || v === null) {
      if (required) this.err(path, 'required');
      return undefined;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.err(path, `must be an integer, got ${JSON.stringify(v)}`);
      return undefined;
    }
    if (v < min || v > max) this.err(path, `must be between ${min} and ${max}, got ${v}`);
    return v;
  }

  oneOf(v: unknown, path: string, values: readonly string[], required = false): void {
    if (v === undefined) {
      if (required) this.err(path, `required, one of ${values.join(', ')}`);
      return;
    }
    if (typeof v !== 'string' || !values.includes(v)) this.err(path, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  }

  stringMap(v: unknown, path: string, keyCheck: (k: string) => string | null, valueCheck?: (val: string) => string | null): Obj | undefined {
    const m = this.obj(v, path);
    if (!m) return undefined;
    for (const [k, val] of Object.entries(m)) {
      const kp = join(path, k);
      const keyProblem = keyCheck(k);
      if (keyProblem) this.err(kp, keyProblem);
      if (typeof val !== 'string') {
        this.err(kp, `value must be a string, got ${JSON.stringify(val)} (quote it in YAML)`);
        continue;
      }
      const valueProblem = valueCheck?.(val);
      if (valueProblem) this.err(kp, valueProblem);
    }
    return m;
  }
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

// ---------- metadata ----------

function checkMetadata(o: Obj, c: Ctx, opts: { namespaced: boolean; nameIsLabel: boolean; allowGenerateName?: boolean }): void {
  const meta = c.obj(o.metadata, 'metadata', true);
  if (!meta) return;
  c.fields(meta, 'metadata', META_FIELDS);
  if (meta.name === undefined && opts.allowGenerateName && typeof meta.generateName === 'string') {
    // generated names are checked by the API server after the suffix is added
  } else {
    const name = c.str(meta.name, 'metadata.name', true);
    if (name !== undefined && !(opts.nameIsLabel ? isDnsLabel(name) : isDnsSubdomain(name))) {
      c.err('metadata.name', `"${name}" is not a valid DNS-1123 ${opts.nameIsLabel ? 'label' : 'subdomain'} name`);
    }
  }
  if (meta.namespace !== undefined) {
    if (!opts.namespaced) c.err('metadata.namespace', 'this kind is cluster-scoped and takes no namespace');
    else if (!isDnsLabel(meta.namespace)) c.err('metadata.namespace', `"${String(meta.namespace)}" is not a valid namespace name`);
  }
  checkLabels(meta.labels, 'metadata.labels', c);
  c.stringMap(meta.annotations, 'metadata.annotations', (k) => (isQualifiedName(k) ? null : `"${k}" is not a valid annotation key`));
}

function checkLabels(v: unknown, path: string, c: Ctx): void {
  c.stringMap(
    v,
    path,
    (k) => (isQualifiedName(k) ? null : `"${k}" is not a valid label key`),
    (val) => (val.length <= 63 && LABEL_VALUE.test(val) ? null : `"${val}" is not a valid label value`),
  );
}

function checkLabelSelector(v: unknown, path: string, c: Ctx, required = false): Obj | undefined {
  const sel = c.obj(v, path, required);
  if (!sel) return undefined;
  c.fields(sel, path, set('matchLabels', 'matchExpressions'));
  checkLabels(sel.matchLabels, join(path, 'matchLabels'), c);
  const exprs = c.list(sel.matchExpressions, join(path, 'matchExpressions'));
  exprs?.forEach((e, i) => {
    const p = join(join(path, 'matchExpressions'), i);
    const ex = c.obj(e, p, true);
    if (!ex) return;
    c.fields(ex, p, set('key', 'operator', 'values'));
    if (!isQualifiedName(ex.key)) c.err(join(p, 'key'), 'must be a valid label key');
    c.oneOf(ex.operator, join(p, 'operator'), ['In', 'NotIn', 'Exists', 'DoesNotExist'], true);
    const values = c.list(ex.values, join(p, 'values'));
    if ((ex.operator === 'In' || ex.operator === 'NotIn') && (!values || values.length === 0)) c.err(join(p, 'values'), `required for operator ${ex.operator}`);
    if ((ex.operator === 'Exists' || ex.operator === 'DoesNotExist') && values && values.length > 0) c.err(join(p, 'values'), `must be empty for operator ${ex.operator}`);
  });
  return sel;
}

/** Whether a label selector (matchLabels / matchExpressions) selects the given labels. */
export function selectorMatches(sel: Obj, labels: Obj): boolean {
  const ml = isObj(sel.matchLabels) ? sel.matchLabels : {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  const exprs = Array.isArray(sel.matchExpressions) ? sel.matchExpressions : [];
  for (const e of exprs) {
    if (!isObj(e)) return false;
    const key = String(e.key);
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    const values = Array.isArray(e.values) ? e.values : [];
    if (e.operator === 'In' && !(has && values.includes(labels[key]))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

// ---------- pods and containers ----------

function checkPodTemplate(v: unknown, path: string, c: Ctx): Obj | undefined {
  const t = c.obj(v, path, true);
  if (!t) return undefined;
  c.fields(t, path, set('metadata', 'spec'));
  const meta = c.obj(t.metadata, join(path, 'metadata'));
  if (meta) {
    c.fields(meta, join(path, 'metadata'), META_FIELDS);
    checkLabels(meta.labels, join(path, 'metadata.labels'), c);
    c.stringMap(meta.annotations, join(path, 'metadata.annotations'), (k) => (isQualifiedName(k) ? null : `"${k}" is not a valid annotation key`));
  }
  checkPodSpec(t.spec, join(path, 'spec'), c);
  return t;
}

/** Checks a PodSpec (containers, init containers and sidecars, volumes, security). */
function checkPodSpec(v: unknown, path: string, c: Ctx): void {
  const spec = c.obj(v, path, true);
  if (!spec) return;
  c.fields(spec, path, POD_SPEC_FIELDS);
  c.oneOf(spec.restartPolicy, join(path, 'restartPolicy'), ['Always', 'OnFailure', 'Never']);
  c.oneOf(spec.dnsPolicy, join(path, 'dnsPolicy'), ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']);
  c.int(spec.terminationGracePeriodSeconds, join(path, 'terminationGracePeriodSeconds'), 0);
  c.int(spec.activeDeadlineSeconds, join(path, 'activeDeadlineSeconds'), 1);
  c.bool(spec.automountServiceAccountToken, join(path, 'automountServiceAccountToken'));
  c.bool(spec.enableServiceLinks, join(path, 'enableServiceLinks'));
  c.bool(spec.shareProcessNamespace, join(path, 'shareProcessNamespace'));
  if (spec.serviceAccountName !== undefined && !isDnsSubdomain(spec.serviceAccountName)) c.err(join(path, 'serviceAccountName'), 'not a valid name');
  const psc = c.obj(spec.securityContext, join(path, 'securityContext'));
  if (psc) {
    c.fields(psc, join(path, 'securityContext'), POD_SC_FIELDS);
    checkIds(psc, join(path, 'securityContext'), c);
    c.int(psc.fsGroup, join(path, 'securityContext.fsGroup'), 0);
    c.oneOf(psc.fsGroupChangePolicy, join(path, 'securityContext.fsGroupChangePolicy'), ['OnRootMismatch', 'Always']);
    checkSeccomp(psc.seccompProfile, join(path, 'securityContext.seccompProfile'), c);
  }

  const volumes = new Map<string, Obj>();
  c.list(spec.volumes, join(path, 'volumes'))?.forEach((vv, i) => {
    const p = join(join(path, 'volumes'), i);
    const vol = c.obj(vv, p, true);
    if (!vol) return;
    const name = c.str(vol.name, join(p, 'name'), true);
    if (name !== undefined) {
      if (!isDnsLabel(name)) c.err(join(p, 'name'), `"${name}" is not a valid DNS-1123 label`);
      if (volumes.has(name)) c.err(join(p, 'name'), `duplicate volume name "${name}"`);
      volumes.set(name, vol);
    }
    const sources = Object.keys(vol).filter((k) => k !== 'name');
    for (const k of sources) if (!VOLUME_SOURCES.has(k)) c.err(join(p, k), `unknown volume source "${k}"`);
    if (sources.length !== 1) c.err(p, `must have exactly one volume source, has ${sources.length}`);
    checkVolumeSource(vol, p, c);
  });

  const names = new Set<string>();
  const init = c.list(spec.initContainers, join(path, 'initContainers'));
  const containers = c.list(spec.containers, join(path, 'containers'), true);
  if (containers && containers.length === 0) c.err(join(path, 'containers'), 'must have at least one container');
  init?.forEach((ct, i) => checkContainer(ct, join(join(path, 'initContainers'), i), c, { init: true, volumes, names }));
  containers?.forEach((ct, i) => checkContainer(ct, join(join(path, 'containers'), i), c, { init: false, volumes, names }));
}

function checkIds(sc: Obj, path: string, c: Ctx): void {
  c.int(sc.runAsUser, join(path, 'runAsUser'), 0, 2 ** 31 - 1);
  c.int(sc.runAsGroup, join(path, 'runAsGroup'), 0, 2 ** 31 - 1);
  c.bool(sc.runAsNonRoot, join(path, 'runAsNonRoot'));
  if (sc.runAsNonRoot === true && sc.runAsUser === 0) c.err(join(path, 'runAsUser'), 'runAsNonRoot is true but runAsUser is 0');
}

function checkSeccomp(v: unknown, path: string, c: Ctx): void {
  const s = c.obj(v, path);
  if (!s) return;
  c.fields(s, path, set('type', 'localhostProfile'));
  c.oneOf(s.type, join(path, 'type'), ['RuntimeDefault', 'Unconfined', 'Localhost'], true);
}

function checkVolumeSource(vol: Obj, p: string, c: Ctx): void {
  if (vol.configMap !== undefined) {
    const cm = c.obj(vol.configMap, join(p, 'configMap'));
    if (cm) {
      c.fields(cm, join(p, 'configMap'), set('name', 'items', 'defaultMode', 'optional'));
      const n = c.str(cm.name, join(p, 'configMap.name'), true);
      if (n !== undefined && !isDnsSubdomain(n)) c.err(join(p, 'configMap.name'), `"${n}" is not a valid ConfigMap name`);
      checkKeyToPath(cm.items, join(p, 'configMap.items'), c);
      c.int(cm.defaultMode, join(p, 'configMap.defaultMode'), 0, 0o777);
      c.bool(cm.optional, join(p, 'configMap.optional'));
    }
  }
  if (vol.secret !== undefined) {
    const s = c.obj(vol.secret, join(p, 'secret'));
    if (s) {
      c.fields(s, join(p, 'secret'), set('secretName', 'items', 'defaultMode', 'optional'));
      c.str(s.secretName, join(p, 'secret.secretName'), true);
      checkKeyToPath(s.items, join(p, 'secret.items'), c);
      c.int(s.defaultMode, join(p, 'secret.defaultMode'), 0, 0o777);
      c.bool(s.optional, join(p, 'secret.optional'));
    }
  }
  if (vol.emptyDir !== undefined) {
    const e = c.obj(vol.emptyDir, join(p, 'emptyDir'));
    if (e) {
      c.fields(e, join(p, 'emptyDir'), set('medium', 'sizeLimit'));
      c.oneOf(e.medium, join(p, 'emptyDir.medium'), ['', 'Memory', 'HugePages']);
      if (e.sizeLimit !== undefined) checkQuantity(e.sizeLimit, join(p, 'emptyDir.sizeLimit'), c);
    }
  }
}

function checkKeyToPath(v: unknown, path: string, c: Ctx): void {
  c.list(v, path)?.forEach((it, i) => {
    const p = join(path, i);
    const item = c.obj(it, p, true);
    if (!item) return;
    c.fields(item, p, set('key', 'path', 'mode'));
    c.str(item.key, join(p, 'key'), true);
    const rel = c.str(item.path, join(p, 'path'), true);
    if (rel !== undefined && (rel.startsWith('/') || rel.split('/').includes('..'))) c.err(join(p, 'path'), 'must be a relative path without ".."');
  });
}

function checkQuantity(v: unknown, path: string, c: Ctx): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') {
    c.err(path, `must be a quantity, got ${JSON.stringify(v)}`);
    return undefined;
  }
  const q = parseQuantity(v);
  if (q === undefined) c.err(path, `"${v}" is not a valid quantity`);
  else if (q < 0) c.err(path, 'must not be negative');
  return q;
}

interface ContainerCtx {
  init: boolean;
  volumes: Map<string, Obj>;
  names: Set<string>;
}

function checkContainer(v: unknown, path: string, c: Ctx, cc: ContainerCtx): void {
  const ct = c.obj(v, path, true);
  if (!ct) return;
  c.fields(ct, path, CONTAINER_FIELDS);
  const name = c.str(ct.name, join(path, 'name'), true);
  if (name !== undefined) {
    if (!isDnsLabel(name)) c.err(join(path, 'name'), `"${name}" is not a valid DNS-1123 label`);
    if (cc.names.has(name)) c.err(join(path, 'name'), `duplicate container name "${name}"`);
    cc.names.add(name);
  }
  c.str(ct.image, join(path, 'image'), true);
  c.oneOf(ct.imagePullPolicy, join(path, 'imagePullPolicy'), ['Always', 'IfNotPresent', 'Never']);
  c.oneOf(ct.terminationMessagePolicy, join(path, 'terminationMessagePolicy'), ['File', 'FallbackToLogsOnError']);
  for (const k of ['command', 'args'] as const) {
    c.list(ct[k], join(path, k))?.forEach((a, i) => c.str(a, join(join(path, k), i)));
  }

  // Native sidecars: only init containers take restartPolicy, and only "Always".
  const sidecar = cc.init && ct.restartPolicy === 'Always';
  if (ct.restartPolicy !== undefined) {
    if (!cc.init) c.err(join(path, 'restartPolicy'), 'only init containers may set restartPolicy (native sidecars)');
    else c.oneOf(ct.restartPolicy, join(path, 'restartPolicy'), ['Always']);
  }
  if (cc.init && !sidecar) {
    for (const k of ['livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle']) {
      if (ct[k] !== undefined) c.err(join(path, k), `init containers may set ${k} only as native sidecars (restartPolicy: Always)`);
    }
  }

  const portNames = new Set<string>();
  c.list(ct.ports, join(path, 'ports'))?.forEach((pv, i) => {
    const p = join(join(path, 'ports'), i);
    const port = c.obj(pv, p, true);
    if (!port) return;
    c.fields(port, p, set('name', 'containerPort', 'protocol', 'hostPort', 'hostIP'));
    c.int(port.containerPort, join(p, 'containerPort'), 1, 65535, true);
    c.int(port.hostPort, join(p, 'hostPort'), 1, 65535);
    c.oneOf(port.protocol, join(p, 'protocol'), ['TCP', 'UDP', 'SCTP']);
    if (port.name !== undefined) {
      const pn = c.str(port.name, join(p, 'name'));
      if (pn !== undefined) {
        if (!isPortName(pn)) c.err(join(p, 'name'), `"${pn}" is not a valid port name (IANA_SVC_NAME, at most 15 characters)`);
        if (portNames.has(pn)) c.err(join(p, 'name'), `duplicate port name "${pn}"`);
        portNames.add(pn);
      }
    }
  });

  const envNames = new Set<string>();
  c.list(ct.env, join(path, 'env'))?.forEach((ev, i) => {
    const p = join(join(path, 'env'), i);
    const e = c.obj(ev, p, true);
    if (!e) return;
    c.fields(e, p, set('name', 'value', 'valueFrom'));
    const en = c.str(e.name, join(p, 'name'), true);
    if (en !== undefined) {
      if (en.includes('=')) c.err(join(p, 'name'), 'must not contain "="');
      if (envNames.has(en)) c.err(join(p, 'name'), `duplicate env var "${en}"`);
      envNames.add(en);
    }
    c.str(e.value, join(p, 'value'));
    if (e.value !== undefined && e.valueFrom !== undefined) c.err(p, 'value and valueFrom are mutually exclusive');
    const vf = c.obj(e.valueFrom, join(p, 'valueFrom'));
    if (vf) {
      const kinds = Object.keys(vf);
      c.fields(vf, join(p, 'valueFrom'), set('fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'));
      if (kinds.length !== 1) c.err(join(p, 'valueFrom'), 'must have exactly one source');
      const fr = c.obj(vf.fieldRef, join(p, 'valueFrom.fieldRef'));
      if (fr) {
        c.fields(fr, join(p, 'valueFrom.fieldRef'), set('fieldPath', 'apiVersion'));
        const fp = c.str(fr.fieldPath, join(p, 'valueFrom.fieldRef.fieldPath'), true);
        if (fp !== undefined && !FIELD_PATHS.has(fp) && !/^metadata\.(labels|annotations)\['[^']+'\]$/.test(fp)) {
          c.err(join(p, 'valueFrom.fieldRef.fieldPath'), `"${fp}" is not a supported downward-API field`);
        }
      }
      for (const k of ['configMapKeyRef', 'secretKeyRef'] as const) {
        const ref = c.obj(vf[k], join(p, `valueFrom.${k}`));
        if (ref) {
          c.fields(ref, join(p, `valueFrom.${k}`), set('name', 'key', 'optional'));
          c.str(ref.key, join(p, `valueFrom.${k}.key`), true);
        }
      }
      const rf = c.obj(vf.resourceFieldRef, join(p, 'valueFrom.resourceFieldRef'));
      if (rf) {
        c.fields(rf, join(p, 'valueFrom.resourceFieldRef'), set('containerName', 'resource', 'divisor'));
        c.oneOf(rf.resource, join(p, 'valueFrom.resourceFieldRef.resource'), ['limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage'], true);
      }
    }
  });

  checkResources(ct.resources, join(path, 'resources'), c);

  const mountPaths = new Set<string>();
  c.list(ct.volumeMounts, join(path, 'volumeMounts'))?.forEach((mv, i) => {
    const p = join(join(path, 'volumeMounts'), i);
    const m = c.obj(mv, p, true);
    if (!m) return;
    c.fields(m, p, set('name', 'mountPath', 'readOnly', 'subPath', 'subPathExpr', 'mountPropagation', 'recursiveReadOnly'));
    const vn = c.str(m.name, join(p, 'name'), true);
    if (vn !== undefined && !cc.volumes.has(vn)) c.err(join(p, 'name'), `mounts volume "${vn}", which the pod does not define`);
    const mp = c.str(m.mountPath, join(p, 'mountPath'), true);
    if (mp !== undefined) {
      if (!mp.startsWith('/')) c.err(join(p, 'mountPath'), 'must be an absolute path');
      if (mountPaths.has(mp)) c.err(join(p, 'mountPath'), `duplicate mountPath "${mp}"`);
      mountPaths.add(mp);
    }
    c.bool(m.readOnly, join(p, 'readOnly'));
  });

  for (const k of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    if (ct[k] !== undefined) checkProbe(ct[k], join(path, k), c, portNames, k !== 'readinessProbe');
  }
  const lc = c.obj(ct.lifecycle, join(path, 'lifecycle'));
  if (lc) {
    c.fields(lc, join(path, 'lifecycle'), set('postStart', 'preStop', 'stopSignal'));
    for (const k of ['postStart', 'preStop'] as const) {
      const h = c.obj(lc[k], join(path, `lifecycle.${k}`));
      if (h) checkHandler(h, join(path, `lifecycle.${k}`), c, portNames, set('exec', 'httpGet', 'tcpSocket', 'sleep'));
    }
  }

  const sc = c.obj(ct.securityContext, join(path, 'securityContext'));
  if (sc) {
    const p = join(path, 'securityContext');
    c.fields(sc, p, CONTAINER_SC_FIELDS);
    checkIds(sc, p, c);
    c.bool(sc.readOnlyRootFilesystem, join(p, 'readOnlyRootFilesystem'));
    c.bool(sc.allowPrivilegeEscalation, join(p, 'allowPrivilegeEscalation'));
    c.bool(sc.privileged, join(p, 'privileged'));
    if (sc.privileged === true && sc.allowPrivilegeEscalation === false) c.err(join(p, 'allowPrivilegeEscalation'), 'cannot be false when privileged is true');
    const caps = c.obj(sc.capabilities, join(p, 'capabilities'));
    if (caps) {
      c.fields(caps, join(p, 'capabilities'), set('add', 'drop'));
      for (const k of ['add', 'drop'] as const) c.list(caps[k], join(p, `capabilities.${k}`))?.forEach((x, i) => c.str(x, join(join(p, `capabilities.${k}`), i), true));
    }
    checkSeccomp(sc.seccompProfile, join(p, 'seccompProfile'), c);
  }
}

function checkResources(v: unknown, path: string, c: Ctx): void {
  const r = c.obj(v, path);
  if (!r) return;
  c.fields(r, path, set('limits', 'requests', 'claims'));
  const parsed: Record<'limits' | 'requests', Map<string, number>> = { limits: new Map(), requests: new Map() };
  for (const k of ['limits', 'requests'] as const) {
    const m = c.obj(r[k], join(path, k));
    if (!m) continue;
    for (const [res, q] of Object.entries(m)) {
      const p = join(join(path, k), res);
      if (!['cpu', 'memory', 'ephemeral-storage'].includes(res) && !res.startsWith('hugepages-') && !res.includes('/')) {
        c.err(p, `unknown resource "${res}"`);
      }
      const n = checkQuantity(q, p, c);
      if (n !== undefined) parsed[k].set(res, n);
    }
  }
  for (const [res, req] of parsed.requests) {
    const lim = parsed.limits.get(res);
    if (lim !== undefined && req > lim) c.err(join(join(path, 'requests'), res), `request ${req} is above the limit ${lim}`);
  }
}

function checkPort(v: unknown, path: string, c: Ctx, portNames: ReadonlySet<string>): void {
  if (typeof v === 'number') {
    c.int(v, path, 1, 65535);
  } else if (typeof v === 'string') {
    if (!portNames.has(v)) c.err(path, `names port "${v}", which the container does not declare`);
  } else {
    c.err(path, 'required: a port number or a port name');
  }
}

function checkHandler(h: Obj, path: string, c: Ctx, portNames: ReadonlySet<string>, handlers: ReadonlySet<string>): void {
  const present = [...handlers].filter((k) => h[k] !== undefined);
  if (present.length !== 1) c.err(path, `must have exactly one handler of ${[...handlers].join(', ')}, has ${present.length}`);
  const hg = c.obj(h.httpGet, join(path, 'httpGet'));
  if (hg) {
    c.fields(hg, join(path, 'httpGet'), set('path', 'port', 'host', 'scheme', 'httpHeaders'));
    const hp = c.str(hg.path, join(path, 'httpGet.path'));
    if (hp !== undefined && !hp.startsWith('/')) c.err(join(path, 'httpGet.path'), 'must start with "/"');
    checkPort(hg.port, join(path, 'httpGet.port'), c, portNames);
    c.oneOf(hg.scheme, join(path, 'httpGet.scheme'), ['HTTP', 'HTTPS']);
  }
  const ts = c.obj(h.tcpSocket, join(path, 'tcpSocket'));
  if (ts) {
    c.fields(ts, join(path, 'tcpSocket'), set('port', 'host'));
    checkPort(ts.port, join(path, 'tcpSocket.port'), c, portNames);
  }
  const ex = c.obj(h.exec, join(path, 'exec'));
  if (ex) {
    c.fields(ex, join(path, 'exec'), set('command'));
    const cmd = c.list(ex.command, join(path, 'exec.command'), true);
    if (cmd && cmd.length === 0) c.err(join(path, 'exec.command'), 'must not be empty');
  }
  const g = c.obj(h.grpc, join(path, 'grpc'));
  if (g) {
    c.fields(g, join(path, 'grpc'), set('port', 'service'));
    c.int(g.port, join(path, 'grpc.port'), 1, 65535, true);
  }
  const sl = c.obj(h.sleep, join(path, 'sleep'));
  if (sl) {
    c.fields(sl, join(path, 'sleep'), set('seconds'));
    c.int(sl.seconds, join(path, 'sleep.seconds'), 0, Number.MAX_SAFE_INTEGER, true);
  }
}

function checkProbe(v: unknown, path: string, c: Ctx, portNames: ReadonlySet<string>, successMustBeOne: boolean): void {
  const p = c.obj(v, path);
  if (!p) return;
  c.fields(p, path, PROBE_FIELDS);
  checkHandler(p, path, c, portNames, set('exec', 'httpGet', 'tcpSocket', 'grpc'));
  c.int(p.initialDelaySeconds, join(path, 'initialDelaySeconds'), 0);
  c.int(p.timeoutSeconds, join(path, 'timeoutSeconds'), 1);
  c.int(p.periodSeconds, join(path, 'periodSeconds'), 1);
  c.int(p.failureThreshold, join(path, 'failureThreshold'), 1);
  const st = c.int(p.successThreshold, join(path, 'successThreshold'), 1);
  if (successMustBeOne && st !== undefined && st !== 1) c.err(join(path, 'successThreshold'), 'must be 1 for liveness and startup probes');
}

// ---------- kinds ----------

function checkPod(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'spec', 'status'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: false, allowGenerateName: true });
  checkPodSpec(o.spec, 'spec', c);
}

function checkNamespace(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'spec'));
  checkMetadata(o, c, { namespaced: false, nameIsLabel: true });
}

function checkConfigMap(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: false });
  c.bool(o.immutable, 'immutable');
  c.stringMap(o.data, 'data', (k) => (k.length <= 253 && CONFIGMAP_KEY.test(k) ? null : `"${k}" is not a valid ConfigMap key`));
}

function checkSecret(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'data', 'stringData', 'type', 'immutable'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: false });
  c.str(o.type, 'type');
  c.stringMap(o.data, 'data', (k) => (CONFIGMAP_KEY.test(k) ? null : `"${k}" is not a valid Secret key`));
  c.stringMap(o.stringData, 'stringData', (k) => (CONFIGMAP_KEY.test(k) ? null : `"${k}" is not a valid Secret key`));
}

function checkService(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'spec'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: true });
  const spec = c.obj(o.spec, 'spec', true);
  if (!spec) return;
  c.fields(
    spec,
    'spec',
    set('selector', 'ports', 'type', 'clusterIP', 'clusterIPs', 'externalName', 'sessionAffinity', 'publishNotReadyAddresses', 'internalTrafficPolicy', 'externalTrafficPolicy', 'ipFamilies', 'ipFamilyPolicy', 'trafficDistribution'),
  );
  c.oneOf(spec.type, 'spec.type', ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);
  c.stringMap(spec.selector, 'spec.selector', (k) => (isQualifiedName(k) ? null : `"${k}" is not a valid label key`));
  const ports = c.list(spec.ports, 'spec.ports', spec.type !== 'ExternalName' && spec.clusterIP !== 'None');
  const names = new Set<string>();
  ports?.forEach((pv, i) => {
    const p = join('spec.ports', i);
    const port = c.obj(pv, p, true);
    if (!port) return;
    c.fields(port, p, set('name', 'protocol', 'port', 'targetPort', 'nodePort', 'appProtocol'));
    c.int(port.port, join(p, 'port'), 1, 65535, true);
    c.oneOf(port.protocol, join(p, 'protocol'), ['TCP', 'UDP', 'SCTP']);
    if (typeof port.targetPort === 'number') c.int(port.targetPort, join(p, 'targetPort'), 1, 65535);
    else if (typeof port.targetPort === 'string' && !isPortName(port.targetPort)) c.err(join(p, 'targetPort'), `"${port.targetPort}" is not a valid port name`);
    else if (port.targetPort !== undefined && typeof port.targetPort !== 'string') c.err(join(p, 'targetPort'), 'must be a number or a port name');
    if (ports.length > 1 && port.name === undefined) c.err(join(p, 'name'), 'required when a Service has more than one port');
    if (typeof port.name === 'string') {
      if (!isDnsLabel(port.name)) c.err(join(p, 'name'), `"${port.name}" is not a valid DNS-1123 label`);
      if (names.has(port.name)) c.err(join(p, 'name'), `duplicate port name "${port.name}"`);
      names.add(port.name);
    }
  });
}

function checkDeployment(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'spec'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: false });
  const spec = c.obj(o.spec, 'spec', true);
  if (!spec) return;
  c.fields(spec, 'spec', set('replicas', 'selector', 'template', 'strategy', 'minReadySeconds', 'revisionHistoryLimit', 'paused', 'progressDeadlineSeconds'));
  c.int(spec.replicas, 'spec.replicas', 0);
  c.int(spec.minReadySeconds, 'spec.minReadySeconds', 0);
  c.int(spec.revisionHistoryLimit, 'spec.revisionHistoryLimit', 0);
  const strategy = c.obj(spec.strategy, 'spec.strategy');
  if (strategy) {
    c.fields(strategy, 'spec.strategy', set('type', 'rollingUpdate'));
    c.oneOf(strategy.type, 'spec.strategy.type', ['RollingUpdate', 'Recreate']);
  }
  const sel = checkLabelSelector(spec.selector, 'spec.selector', c, true);
  const tpl = checkPodTemplate(spec.template, 'spec.template', c);
  checkSelectorAgainstTemplate(sel, tpl, c);
  const podSpec = tpl && isObj(tpl.spec) ? tpl.spec : undefined;
  if (podSpec && podSpec.restartPolicy !== undefined && podSpec.restartPolicy !== 'Always') {
    c.err('spec.template.spec.restartPolicy', 'a Deployment only supports Always');
  }
}

function checkSelectorAgainstTemplate(sel: Obj | undefined, tpl: Obj | undefined, c: Ctx): void {
  if (!sel || !tpl) return;
  const labels = isObj(tpl.metadata) && isObj(tpl.metadata.labels) ? tpl.metadata.labels : {};
  if (Object.keys(sel).length === 0 || (!isObj(sel.matchLabels) && !Array.isArray(sel.matchExpressions))) {
    c.err('spec.selector', 'must not be empty');
  } else if (!selectorMatches(sel, labels)) {
    c.err('spec.selector', 'does not match spec.template.metadata.labels');
  }
}

function checkJob(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'spec'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: false });
  const spec = c.obj(o.spec, 'spec', true);
  if (!spec) return;
  c.fields(
    spec,
    'spec',
    set('template', 'parallelism', 'completions', 'activeDeadlineSeconds', 'backoffLimit', 'backoffLimitPerIndex', 'maxFailedIndexes', 'selector', 'manualSelector', 'ttlSecondsAfterFinished', 'completionMode', 'suspend', 'podFailurePolicy', 'successPolicy', 'podReplacementPolicy'),
  );
  c.int(spec.parallelism, 'spec.parallelism', 0);
  c.int(spec.completions, 'spec.completions', 0);
  c.int(spec.backoffLimit, 'spec.backoffLimit', 0);
  c.int(spec.activeDeadlineSeconds, 'spec.activeDeadlineSeconds', 1);
  c.int(spec.ttlSecondsAfterFinished, 'spec.ttlSecondsAfterFinished', 0);
  if (spec.selector !== undefined && spec.manualSelector !== true) c.err('spec.selector', 'set only with manualSelector: true (the Job controller generates it)');
  const tpl = checkPodTemplate(spec.template, 'spec.template', c);
  const podSpec = tpl && isObj(tpl.spec) ? tpl.spec : undefined;
  if (podSpec && podSpec.restartPolicy !== 'Never' && podSpec.restartPolicy !== 'OnFailure') {
    c.err('spec.template.spec.restartPolicy', 'a Job needs Never or OnFailure');
  }
}

function checkPdb(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'spec'));
  checkMetadata(o, c, { namespaced: true, nameIsLabel: false });
  const spec = c.obj(o.spec, 'spec', true);
  if (!spec) return;
  c.fields(spec, 'spec', set('minAvailable', 'maxUnavailable', 'selector', 'unhealthyPodEvictionPolicy'));
  if (spec.minAvailable !== undefined && spec.maxUnavailable !== undefined) c.err('spec', 'minAvailable and maxUnavailable are mutually exclusive');
  checkLabelSelector(spec.selector, 'spec.selector', c);
}

function checkRole(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'rules', 'aggregationRule'));
  checkMetadata(o, c, { namespaced: o.kind === 'Role', nameIsLabel: false });
  c.list(o.rules, 'rules')?.forEach((rv, i) => {
    const p = join('rules', i);
    const r = c.obj(rv, p, true);
    if (!r) return;
    c.fields(r, p, set('apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs'));
    const verbs = c.list(r.verbs, join(p, 'verbs'), true);
    if (verbs && verbs.length === 0) c.err(join(p, 'verbs'), 'must not be empty');
  });
}

function checkBinding(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'roleRef', 'subjects'));
  checkMetadata(o, c, { namespaced: o.kind === 'RoleBinding', nameIsLabel: false });
  const ref = c.obj(o.roleRef, 'roleRef', true);
  if (ref) {
    c.fields(ref, 'roleRef', set('apiGroup', 'kind', 'name'));
    c.oneOf(ref.apiGroup, 'roleRef.apiGroup', ['rbac.authorization.k8s.io'], true);
    c.oneOf(ref.kind, 'roleRef.kind', o.kind === 'RoleBinding' ? ['Role', 'ClusterRole'] : ['ClusterRole'], true);
    c.str(ref.name, 'roleRef.name', true);
  }
  c.list(o.subjects, 'subjects')?.forEach((sv, i) => {
    const p = join('subjects', i);
    const s = c.obj(sv, p, true);
    if (!s) return;
    c.fields(s, p, set('kind', 'name', 'namespace', 'apiGroup'));
    c.oneOf(s.kind, join(p, 'kind'), ['ServiceAccount', 'User', 'Group'], true);
    c.str(s.name, join(p, 'name'), true);
    if (s.kind === 'ServiceAccount') c.str(s.namespace, join(p, 'namespace'), o.kind === 'ClusterRoleBinding');
  });
}

function checkMutatingWebhooks(o: Obj, c: Ctx): void {
  c.fields(o, '', set('apiVersion', 'kind', 'metadata', 'webhooks'));
  checkMetadata(o, c, { namespaced: false, nameIsLabel: false });
  const names = new Set<string>();
  c.list(o.webhooks, 'webhooks')?.forEach((wv, i) => {
    const p = join('webhooks', i);
    const w = c.obj(wv, p, true);
    if (!w) return;
    c.fields(
      w,
      p,
      set('name', 'clientConfig', 'rules', 'failurePolicy', 'matchPolicy', 'namespaceSelector', 'objectSelector', 'sideEffects', 'timeoutSeconds', 'admissionReviewVersions', 'reinvocationPolicy', 'matchConditions'),
    );
    const name = c.str(w.name, join(p, 'name'), true);
    if (name !== undefined) {
      if (!isDnsSubdomain(name) || name.split('.').length < 3) c.err(join(p, 'name'), `"${name}" must be a fully qualified name with at least three segments`);
      if (names.has(name)) c.err(join(p, 'name'), `duplicate webhook name "${name}"`);
      names.add(name);
    }
    const cc = c.obj(w.clientConfig, join(p, 'clientConfig'), true);
    if (cc) {
      c.fields(cc, join(p, 'clientConfig'), set('url', 'service', 'caBundle'));
      if ((cc.url === undefined) === (cc.service === undefined)) c.err(join(p, 'clientConfig'), 'exactly one of url or service is required');
      const svc = c.obj(cc.service, join(p, 'clientConfig.service'));
      if (svc) {
        c.fields(svc, join(p, 'clientConfig.service'), set('namespace', 'name', 'path', 'port'));
        c.str(svc.namespace, join(p, 'clientConfig.service.namespace'), true);
        c.str(svc.name, join(p, 'clientConfig.service.name'), true);
        const sp = c.str(svc.path, join(p, 'clientConfig.service.path'));
        if (sp !== undefined && !sp.startsWith('/')) c.err(join(p, 'clientConfig.service.path'), 'must start with "/"');
        c.int(svc.port, join(p, 'clientConfig.service.port'), 1, 65535);
      }
      if (cc.caBundle !== undefined && (typeof cc.caBundle !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(cc.caBundle))) c.err(join(p, 'clientConfig.caBundle'), 'must be base64');
    }
    c.list(w.rules, join(p, 'rules'))?.forEach((rv, j) => {
      const rp = join(join(p, 'rules'), j);
      const r = c.obj(rv, rp, true);
      if (!r) return;
      c.fields(r, rp, set('operations', 'apiGroups', 'apiVersions', 'resources', 'scope'));
      c.list(r.operations, join(rp, 'operations'), true)?.forEach((op, k) => c.oneOf(op, join(join(rp, 'operations'), k), ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', '*']));
      for (const k of ['apiGroups', 'apiVersions', 'resources'] as const) {
        const l = c.list(r[k], join(rp, k), true);
        l?.forEach((x, n) => c.str(x, join(join(rp, k), n)));
      }
      c.oneOf(r.scope, join(rp, 'scope'), ['Cluster', 'Namespaced', '*']);
    });
    c.oneOf(w.failurePolicy, join(p, 'failurePolicy'), ['Ignore', 'Fail']);
    c.oneOf(w.matchPolicy, join(p, 'matchPolicy'), ['Exact', 'Equivalent']);
    c.oneOf(w.sideEffects, join(p, 'sideEffects'), ['None', 'NoneOnDryRun'], true);
    c.oneOf(w.reinvocationPolicy, join(p, 'reinvocationPolicy'), ['Never', 'IfNeeded']);
    c.int(w.timeoutSeconds, join(p, 'timeoutSeconds'), 1, 30);
    const versions = c.list(w.admissionReviewVersions, join(p, 'admissionReviewVersions'), true);
    if (versions && !versions.includes('v1')) c.err(join(p, 'admissionReviewVersions'), 'must include v1');
    checkLabelSelector(w.namespaceSelector, join(p, 'namespaceSelector'), c);
    checkLabelSelector(w.objectSelector, join(p, 'objectSelector'), c);
  });
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
    const apiVersion = c.str(o.apiVersion, 'apiVersion', true);
    const kind = c.str(o.kind, 'kind', true);
    if (apiVersion === undefined || kind === undefined) return;
    const entry = KINDS[`${apiVersion}/${kind}`];
    if (!entry) {
      c.err('apiVersion', `unknown apiVersion/kind ${apiVersion} ${kind}`);
      return;
    }
    entry.check(o, c);
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
  const nsOf = (o: Obj): string => (isObj(o.metadata) && typeof o.metadata.namespace === 'string' ? o.metadata.namespace : 'default');
  const nameOf = (o: Obj): string => (isObj(o.metadata) && typeof o.metadata.name === 'string' ? o.metadata.name : '');
  const key = (kind: string, ns: string, name: string): string => `${kind}/${ns}/${name}`;
  const present = new Set<string>();
  for (const o of objects) present.add(key(String(o.kind), nsOf(o), nameOf(o)));

  const workloads: Workload[] = [];
  for (const o of objects) {
    const spec = isObj(o.spec) ? o.spec : {};
    if (o.kind === 'Pod') {
      workloads.push({ object: describe(o, 0), namespace: nsOf(o), labels: isObj(o.metadata) && isObj(o.metadata.labels) ? o.metadata.labels : {}, spec });
    } else if ((o.kind === 'Deployment' || o.kind === 'Job') && isObj(spec.template)) {
      const t = spec.template;
      workloads.push({
        object: describe(o, 0),
        namespace: nsOf(o),
        labels: isObj(t.metadata) && isObj(t.metadata.labels) ? t.metadata.labels : {},
        spec: isObj(t.spec) ? t.spec : {},
      });
    }
  }
  const hasNamespaces = objects.some((o) => o.kind === 'Namespace');
  for (const o of objects) {
    const c = new Ctx(describe(o, 0), problems);
    const ns = nsOf(o);
    if (hasNamespaces && o.kind !== 'Namespace' && isObj(o.metadata) && typeof o.metadata.namespace === 'string' && !present.has(key('Namespace', 'default', ns))) {
      c.err('metadata.namespace', `namespace "${ns}" is not created by these manifests`);
    }
    if (o.kind === 'Service' && isObj(o.spec) && isObj(o.spec.selector)) {
      const sel = o.spec.selector;
      const matched = workloads.filter((w) => w.namespace === ns && Object.entries(sel).every(([k, v]) => w.labels[k] === v));
      if (matched.length === 0) c.err('spec.selector', 'selects no pod template in these manifests');
      for (const [i, port] of (Array.isArray(o.spec.ports) ? o.spec.ports : []).entries()) {
        if (!isObj(port) || typeof port.targetPort !== 'string') continue;
        const tp = port.targetPort;
        const ok = matched.some((w) =>
          [...(Array.isArray(w.spec.containers) ? w.spec.containers : []), ...(Array.isArray(w.spec.initContainers) ? w.spec.initContainers : [])].some(
            (ct) => isObj(ct) && Array.isArray(ct.ports) && ct.ports.some((p) => isObj(p) && p.name === tp),
          ),
        );
        if (matched.length > 0 && !ok) c.err(`spec.ports[${i}].targetPort`, `no selected container declares a port named "${tp}"`);
      }
    }
    if (o.kind === 'MutatingWebhookConfiguration' && Array.isArray(o.webhooks)) {
      o.webhooks.forEach((w, i) => {
        const svc = isObj(w) && isObj(w.clientConfig) && isObj(w.clientConfig.service) ? w.clientConfig.service : undefined;
        if (!svc) return;
        const target = objects.find((x) => x.kind === 'Service' && nameOf(x) === svc.name && nsOf(x) === svc.namespace);
        if (!target) {
          c.err(`webhooks[${i}].clientConfig.service`, `Service ${String(svc.namespace)}/${String(svc.name)} is not in these manifests`);
          return;
        }
        const port = svc.port ?? 443;
        const ports = isObj(target.spec) && Array.isArray(target.spec.ports) ? target.spec.ports : [];
        if (!ports.some((p) => isObj(p) && p.port === port)) c.err(`webhooks[${i}].clientConfig.service.port`, `Service ${String(svc.name)} has no port ${String(port)}`);
      });
    }
    if (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') {
      const ref = isObj(o.roleRef) ? o.roleRef : {};
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
    (Array.isArray(w.spec.volumes) ? w.spec.volumes : []).forEach((v, i) => {
      if (!isObj(v) || !isObj(v.configMap)) return;
      const cmName = String(v.configMap.name);
      const cm = objects.find((x) => x.kind === 'ConfigMap' && nameOf(x) === cmName && nsOf(x) === w.namespace);
      if (!cm) {
        if (v.configMap.optional !== true) c.err(`volumes[${i}].configMap.name`, `ConfigMap ${cmName} is not in these manifests`);
        return;
      }
      const data = isObj(cm.data) ? cm.data : {};
      for (const item of Array.isArray(v.configMap.items) ? v.configMap.items : []) {
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
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((d, i) => {
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
