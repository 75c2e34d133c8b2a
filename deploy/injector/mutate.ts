/**
 * The pure part of the injector: AdmissionReview in, AdmissionReview (with an
 * RFC 6902 JSON patch) out. No I/O here, so every decision is testable from
 * fixtures; server.ts only does HTTPS plumbing.
 *
 * Which pods get the sidecar:
 *   - pod annotation `sidecar.opentelemetry.io/inject` (the OpenTelemetry
 *     Operator's): "true" -> the default ConfigMap; "false" -> opted out;
 *     "NAME" or "NAMESPACE/NAME" -> that ConfigMap (it must live in the pod's
 *     namespace: a pod cannot mount another namespace's ConfigMap);
 *   - no (or empty) pod annotation -> the namespace default from the
 *     injector's own config (`namespace_defaults`), because an AdmissionReview
 *     carries the pod but not its Namespace object; the pod annotation always
 *     beats the namespace default.
 * A pod that already has a container named like the sidecar is left alone.
 * Nothing here ever refuses a pod: problems become `warnings` on an allowed
 * response.
 */
import type { InjectorConfig } from './config.js';
import { heapMiB, useNativeSidecar } from './config.js';

export const INJECT_ANNOTATION = 'sidecar.opentelemetry.io/inject';
export const STATUS_ANNOTATION = 'sidecar-collector/injected';
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/**
 * Classic sidecars only: a postStart hook that holds the start of the next
 * container until the collector answers /readyz (the kubelet starts containers
 * in order and runs postStart before moving on). Gives up after 30 s without
 * failing, so a slow collector delays the app but never restart-loops it.
 */
export const HOLD_UNTIL_READY_SCRIPT =
  "const end=Date.now()+30000;const again=()=>Date.now()>end?process.exit(0):setTimeout(poll,200);" +
  "function poll(){require('http').get('http://127.0.0.1:8888/readyz',(r)=>{r.resume();r.statusCode===200?process.exit(0):again()}).on('error',again)}poll()";
export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** Ports the collector listens on inside the pod. */
export const OTLP_GRPC_PORT = 4317;
export const OTLP_HTTP_PORT = 4318;
export const TELEMETRY_PORT = 8888;

export interface JsonPatchOp {
  op: 'add';
  path: string;
  value: unknown;
}

type Json = Record<string, unknown>;

/** What the injector decided for one pod. `patch` is null when the pod is left unchanged. */
export interface MutationResult {
  patch: JsonPatchOp[] | null;
  warnings: string[];
  /** Short machine-friendly reason, for logs and metrics. */
  reason: 'injected' | 'not_requested' | 'opted_out' | 'already_injected' | 'invalid_target' | 'unusable_pod';
  configMap?: string;
}

/** Everything derived from the config once, at start. */
export interface SidecarSettings {
  containerName: string;
  native: boolean;
  defaultConfigMap: string;
  namespaceDefaults: ReadonlyMap<string, string>;
  configVolumeName: string;
  bufferVolumeName: string;
  /** JSON text of the container with a placeholder-free shape; cloned per pod. */
  containerJson: string;
  bufferSizeLimit: string;
}

/** RFC 6901: `~` -> `~0`, then `/` -> `~1`. */
export function escapeJsonPointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDnsSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export function isDnsLabel(s: string): boolean {
  return s.length > 0 && s.length <= 63 && DNS1123_LABEL.test(s);
}

/** The container the injector adds, as a plain object (the example manifests mirror it; a test checks they agree). */
export function sidecarContainer(cfg: InjectorConfig): Json {
  const native = useNativeSidecar(cfg);
  const configVolumeName = `${cfg.container_name}-config`;
  const bufferVolumeName = `${cfg.container_name}-buffer`;
  const limits: Json = { memory: cfg.memory_limit };
  if (cfg.cpu_limit) limits.cpu = cfg.cpu_limit;
  const container: Json = { name: cfg.container_name, image: cfg.image, imagePullPolicy: cfg.image_pull_policy };
  if (native) container.restartPolicy = 'Always';
  else container.lifecycle = { postStart: { exec: { command: ['node', '-e', HOLD_UNTIL_READY_SCRIPT] } } };
  Object.assign(container, {
    env: [
      downward('K8S_POD_NAME', 'metadata.name'),
      downward('K8S_NAMESPACE_NAME', 'metadata.namespace'),
      downward('K8S_NODE_NAME', 'spec.nodeName'),
      downward('K8S_POD_UID', 'metadata.uid'),
      downward('K8S_POD_IP', 'status.podIP'),
      { name: 'COLLECTOR_CONFIG', value: `${cfg.config_mount_path.replace(/\/+$/, '')}/${cfg.config_map_key}` },
      { name: 'NODE_OPTIONS', value: `--max-old-space-size=${heapMiB(cfg)} --max-semi-space-size=2` },
    ],
    ports: [
      { name: 'otlp-grpc', containerPort: OTLP_GRPC_PORT, protocol: 'TCP' },
      { name: 'otlp-http', containerPort: OTLP_HTTP_PORT, protocol: 'TCP' },
      { name: 'telemetry', containerPort: TELEMETRY_PORT, protocol: 'TCP' },
    ],
    // Startup: up to 30 s at 1 s period; the next container starts as soon as it passes.
    startupProbe: { httpGet: { path: '/readyz', port: TELEMETRY_PORT }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 30 },
    // Readiness means "can accept OTLP", never "the backend is reachable".
    readinessProbe: { httpGet: { path: '/readyz', port: TELEMETRY_PORT }, periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port: TELEMETRY_PORT }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    resources: { requests: { cpu: cfg.cpu_request, memory: cfg.memory_request }, limits },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: cfg.run_as_user,
      runAsGroup: cfg.run_as_user,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: configVolumeName, mountPath: cfg.config_mount_path, readOnly: true },
      { name: bufferVolumeName, mountPath: cfg.buffer_mount_path },
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  });
  return container;
}

function downward(name: string, fieldPath: string): Json {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

export function compileSettings(cfg: InjectorConfig): SidecarSettings {
  return {
    containerName: cfg.container_name,
    native: useNativeSidecar(cfg),
    defaultConfigMap: cfg.config_map,
    namespaceDefaults: new Map(Object.entries(cfg.namespace_defaults)),
    configVolumeName: `${cfg.container_name}-config`,
    bufferVolumeName: `${cfg.container_name}-buffer`,
    containerJson: JSON.stringify(sidecarContainer(cfg)),
    bufferSizeLimit: cfg.buffer_size_limit,
  };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Target = { inject: true; configMap: string } | { inject: false; reason: MutationResult['reason']; warning?: string };

/** Reads the annotation (pod first, then the namespace default) and names the ConfigMap to mount. */
export function injectionTarget(pod: Json, namespace: string, s: SidecarSettings): Target {
  const meta = isObject(pod.metadata) ? pod.metadata : {};
  const annotations = isObject(meta.annotations) ? meta.annotations : {};
  const podValue = annotations[INJECT_ANNOTATION];
  let value = typeof podValue === 'string' ? podValue.trim() : '';
  let from = 'pod annotation';
  if (value === '') {
    value = (s.namespaceDefaults.get(namespace) ?? '').trim();
    from = `namespace default for ${namespace}`;
  }
  if (value === '') return { inject: false, reason: 'not_requested' };
  const lower = value.toLowerCase();
  if (lower === 'false') return { inject: false, reason: 'opted_out' };
  if (lower === 'true') return { inject: true, configMap: s.defaultConfigMap };
  const slash = value.indexOf('/');
  let name = value;
  if (slash >= 0) {
    const ns = value.slice(0, slash);
    name = value.slice(slash + 1);
    if (!isDnsLabel(ns) || !isDnsSubdomain(name)) {
      return { inject: false, reason: 'invalid_target', warning: `${INJECT_ANNOTATION}: "${value}" (${from}) is not NAME or NAMESPACE/NAME; sidecar not injected` };
    }
    if (namespace && ns !== namespace) {
      return {
        inject: false,
        reason: 'invalid_target',
        warning: `${INJECT_ANNOTATION}: ConfigMap ${ns}/${name} is in another namespace and cannot be mounted by a pod in ${namespace}; sidecar not injected`,
      };
    }
  }
  if (!isDnsSubdomain(name)) {
    return { inject: false, reason: 'invalid_target', warning: `${INJECT_ANNOTATION}: "${value}" (${from}) is not a valid ConfigMap name; sidecar not injected` };
  }
  return { inject: true, configMap: name };
}

function hasContainerNamed(list: unknown, name: string): boolean {
  return Array.isArray(list) && list.some((c) => isObject(c) && c.name === name);
}

/** Builds the JSON patch that adds the sidecar to one pod (or says why not). */
export function mutatePod(pod: unknown, namespace: string, s: SidecarSettings): MutationResult {
  if (!isObject(pod)) {
    return { patch: null, reason: 'unusable_pod', warnings: ['sidecar injector: the admission request has no pod object; sidecar not injected'] };
  }
  const target = injectionTarget(pod, namespace, s);
  if (!target.inject) return { patch: null, reason: target.reason, warnings: target.warning ? [target.warning] : [] };

  const spec = pod.spec;
  const unusable = (why: string): MutationResult => ({
    patch: null,
    reason: 'unusable_pod',
    warnings: [`sidecar injector: ${why}; sidecar not injected`],
  });
  if (!isObject(spec)) return unusable('the pod has no spec');
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) return unusable('spec.containers is missing or empty');
  if (spec.initContainers !== undefined && spec.initContainers !== null && !Array.isArray(spec.initContainers)) {
    return unusable('spec.initContainers is not a list');
  }
  if (spec.volumes !== undefined && spec.volumes !== null && !Array.isArray(spec.volumes)) return unusable('spec.volumes is not a list');
  if (pod.metadata !== undefined && !isObject(pod.metadata)) return unusable('metadata is not an object');

  if (hasContainerNamed(spec.containers, s.containerName) || hasContainerNamed(spec.initContainers, s.containerName)) {
    return { patch: null, reason: 'already_injected', warnings: [] };
  }
  const volumes = Array.isArray(spec.volumes) ? (spec.volumes as unknown[]) : null;
  for (const v of volumes ?? []) {
    if (isObject(v) && (v.name === s.configVolumeName || v.name === s.bufferVolumeName)) {
      return unusable(`the pod already has a volume named ${String(v.name)}`);
    }
  }

  const patch: JsonPatchOp[] = [];
  const newVolumes = [
    { name: s.configVolumeName, configMap: { name: target.configMap } },
    { name: s.bufferVolumeName, emptyDir: { sizeLimit: s.bufferSizeLimit } },
  ];
  if (volumes === null) patch.push({ op: 'add', path: '/spec/volumes', value: newVolumes });
  else for (const v of newVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });

  const container = JSON.parse(s.containerJson) as Json;
  if (s.native) {
    // First init container: later init containers (and their spans) already find the collector listening.
    if (Array.isArray(spec.initContainers)) patch.push({ op: 'add', path: '/spec/initContainers/0', value: container });
    else patch.push({ op: 'add', path: '/spec/initContainers', value: [container] });
  } else {
    // First container, so its postStart hook holds the app until the collector is ready.
    patch.push({ op: 'add', path: '/spec/containers/0', value: container });
  }

  const meta = pod.metadata;
  const add: Json = { [STATUS_ANNOTATION]: s.native ? 'native' : 'classic' };
  const existing = isObject(meta) && isObject(meta.annotations) ? meta.annotations : null;
  const first = spec.containers[0];
  if (!s.native && isObject(first) && typeof first.name === 'string' && !(existing && DEFAULT_CONTAINER_ANNOTATION in existing)) {
    // kubectl logs/exec keep defaulting to the app, not the sidecar now in front of it.
    add[DEFAULT_CONTAINER_ANNOTATION] = first.name;
  }
  if (!isObject(meta)) patch.push({ op: 'add', path: '/metadata', value: { annotations: add } });
  else if (!existing) patch.push({ op: 'add', path: '/metadata/annotations', value: add });
  else for (const [k, v] of Object.entries(add)) patch.push({ op: 'add', path: `/metadata/annotations/${escapeJsonPointer(k)}`, value: v });

  return { patch, reason: 'injected', warnings: [], configMap: target.configMap };
}

/** HTTP status and JSON body to answer one /mutate request body with. */
export interface ReviewAnswer {
  status: number;
  body: Json;
  /** Set when a review was answered (for logging). */
  result?: MutationResult;
  uid?: string;
  podName?: string;
  namespace?: string;
}

function errorAnswer(status: number, message: string): ReviewAnswer {
  return { status, body: { error: message } };
}

/**
 * Handles one request body. Bad JSON or something that is not an
 * admission.k8s.io/v1 AdmissionReview with a request.uid -> 400 with a
 * message. A real review is always answered 200 and `allowed: true`.
 */
export function answerReview(raw: string | Buffer, s: SidecarSettings): ReviewAnswer {
  let review: unknown;
  try {
    review = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    return errorAnswer(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(review) || review.kind !== 'AdmissionReview') {
    return errorAnswer(400, 'request body is not an AdmissionReview');
  }
  if (review.apiVersion !== ADMISSION_API_VERSION) {
    return errorAnswer(400, `unsupported AdmissionReview apiVersion ${JSON.stringify(review.apiVersion)}; expected ${ADMISSION_API_VERSION}`);
  }
  const req = review.request;
  if (!isObject(req) || typeof req.uid !== 'string' || req.uid === '') {
    return errorAnswer(400, 'AdmissionReview has no request.uid');
  }
  const uid = req.uid;
  const kind = isObject(req.kind) ? req.kind : {};
  const namespace = typeof req.namespace === 'string' ? req.namespace : '';
  const obj = req.object;
  const meta = isObject(obj) && isObject(obj.metadata) ? obj.metadata : {};
  const podName = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '';
  const ns = namespace || (typeof meta.namespace === 'string' ? meta.namespace : '');

  const response: Json = { uid, allowed: true };
  const answer: ReviewAnswer = { status: 200, body: { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response }, uid, podName, namespace: ns };
  // Only pod creation is ours; anything else the webhook may be sent is let through untouched.
  if (kind.kind !== 'Pod' || (kind.group !== undefined && kind.group !== '') || req.operation !== 'CREATE' || req.subResource) {
    return answer;
  }
  const result = mutatePod(obj, ns, s);
  answer.result = result;
  if (result.patch) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
  }
  if (result.warnings.length > 0) response.warnings = result.warnings;
  return answer;
}
