/**
 * The example manifests: they parse, pass the structural validator with
 * cross-references, and hold the properties the sidecar depends on (native
 * sidecar form, directory-mounted ConfigMap, probes on the right paths,
 * resources and heap size, downward API, hardening), and they agree with what
 * the injector produces.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadInjectorConfig } from '../injector/config.js';
import { INJECT_ANNOTATION, sidecarContainer } from '../injector/mutate.js';
import { parseQuantity } from '../injector/quantity.js';
import { formatProblem, validateManifestText } from './validate.js';

type Obj = Record<string, any>;

const dir = import.meta.dirname;
const FILES = ['native-sidecar.yaml', 'classic-sidecar.yaml', 'injector.yaml', 'loadtest.yaml', 'shared-decisions.yaml'];
const text = (f: string): string => readFileSync(join(dir, f), 'utf8');
const objects = (f: string): Obj[] => validateManifestText(text(f)).objects as Obj[];
const find = (objs: Obj[], kind: string, name?: string): Obj => {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata?.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''}`);
  return o;
};
const envOf = (c: Obj): Record<string, Obj> => Object.fromEntries((c.env ?? []).map((e: Obj) => [e.name, e]));

const tmp = mkdtempSync(join(tmpdir(), 'deploy-manifests-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(FILES)('%s', (file) => {
  it('parses and passes the structural validator, cross-references included', () => {
    const { objects: objs, problems } = validateManifestText(text(file), { crossReferences: true });
    expect(problems.map(formatProblem)).toEqual([]);
    expect(objs.length).toBeGreaterThan(1);
  });

  it('carries a collector config that is valid YAML with a complete traces pipeline', () => {
    for (const cm of objects(file).filter((o) => o.kind === 'ConfigMap' && o.metadata.name === 'sidecar-collector-config')) {
      const cfg = parseYaml(cm.data['config.yaml']) as Obj;
      const pipeline = cfg.service.pipelines.traces;
      for (const section of ['receivers', 'processors', 'exporters'] as const) {
        for (const id of pipeline[section] ?? []) expect(cfg[section], `${section} ${id}`).toHaveProperty([id]);
      }
      expect(pipeline.receivers.length).toBeGreaterThan(0);
      expect(pipeline.exporters.length).toBeGreaterThan(0);
      // OTLP only from the pod's own containers; probes reach the telemetry port on the pod IP.
      expect(cfg.receivers.otlp.protocols.grpc.endpoint).toBe('localhost:4317');
      expect(cfg.receivers.otlp.protocols.http.endpoint).toBe('localhost:4318');
      expect(cfg.service.telemetry.metrics.address).toBe('0.0.0.0:8888');
    }
  });
});

/** The pod template that carries the collector, and the collector container in it. */
function collectorPod(file: string): { objs: Obj[]; spec: Obj; collector: Obj; native: boolean } {
  const objs = objects(file);
  const workload = objs.find((o) => (o.kind === 'Deployment' || o.kind === 'Job') && JSON.stringify(o).includes('"sidecar-collector"'));
  if (!workload) throw new Error('no workload with the collector');
  const spec = workload.spec.template.spec;
  const init = (spec.initContainers ?? []).find((c: Obj) => c.name === 'sidecar-collector');
  const regular = spec.containers.find((c: Obj) => c.name === 'sidecar-collector');
  return { objs, spec, collector: init ?? regular, native: init !== undefined };
}

describe.each([
  ['native-sidecar.yaml', true],
  ['classic-sidecar.yaml', false],
  ['loadtest.yaml', true],
] as const)('collector pod in %s', (file, native) => {
  const { objs, spec, collector } = collectorPod(file);

  it(native ? 'is a native sidecar: init container with restartPolicy Always' : 'is the first regular container, holding the app until ready', () => {
    if (native) {
      expect(collector.restartPolicy).toBe('Always');
      expect(spec.initContainers[0].name).toBe('sidecar-collector');
      expect(spec.containers.some((c: Obj) => c.name === 'sidecar-collector')).toBe(false);
    } else {
      expect(spec.initContainers).toBeUndefined();
      expect(spec.containers[0].name).toBe('sidecar-collector');
      expect(collector.restartPolicy).toBeUndefined();
      expect(collector.lifecycle.postStart.exec.command.slice(0, 2)).toEqual(['node', '-e']);
      expect(collector.lifecycle.postStart.exec.command[2]).toContain('127.0.0.1:8888/readyz');
    }
  });

  it('is exactly the container the injector adds', () => {
    const cfg = loadInjectorConfig(['--native-sidecar', String(native)], {});
    expect(collector).toEqual(sidecarContainer(cfg));
  });

  it('mounts the ConfigMap as a directory and points COLLECTOR_CONFIG at a key it has', () => {
    const env = envOf(collector);
    const mount = collector.volumeMounts.find((m: Obj) => m.mountPath === '/etc/collector');
    expect(mount.subPath).toBeUndefined();
    expect(mount.subPathExpr).toBeUndefined();
    expect(mount.readOnly).toBe(true);
    const volume = spec.volumes.find((v: Obj) => v.name === mount.name);
    const cm = find(objs, 'ConfigMap', volume.configMap.name);
    expect(volume.configMap.items).toBeUndefined();
    expect(env.COLLECTOR_CONFIG.value).toBe('/etc/collector/config.yaml');
    expect(Object.keys(cm.data)).toContain('config.yaml');
  });

  it('buffers to a size-limited emptyDir that the collector stays below', () => {
    const mount = collector.volumeMounts.find((m: Obj) => m.mountPath === '/var/lib/sidecar-collector');
    const volume = spec.volumes.find((v: Obj) => v.name === mount.name);
    expect(volume.emptyDir.medium).toBeUndefined(); // tmpfs would count against the memory limit
    const limit = parseQuantity(volume.emptyDir.sizeLimit)!;
    expect(limit).toBe(2 ** 30);
    const cfg = parseYaml(find(objs, 'ConfigMap', 'sidecar-collector-config').data['config.yaml']) as Obj;
    const queue = cfg.exporters.otlp.sending_queue;
    expect(queue.directory.startsWith('/var/lib/sidecar-collector/')).toBe(true);
    expect(queue.max_bytes).toBeLessThan(limit);
  });

  it('has requests, a memory limit, and a heap size that leaves room below it', () => {
    expect(parseQuantity(collector.resources.requests.cpu)).toBeCloseTo(0.05);
    expect(parseQuantity(collector.resources.requests.memory)).toBe(64 * 2 ** 20);
    const limitMiB = parseQuantity(collector.resources.limits.memory)! / 2 ** 20;
    expect(limitMiB).toBe(256);
    const heap = Number(/--max-old-space-size=(\d+)/.exec(envOf(collector).NODE_OPTIONS.value)![1]);
    expect(heap).toBeGreaterThan(limitMiB * 0.5);
    expect(heap).toBeLessThanOrEqual(limitMiB * 0.75);
  });

  it('probes /readyz for startup and readiness and /healthz for liveness on 8888', () => {
    expect(collector.startupProbe.httpGet).toEqual({ path: '/readyz', port: 8888 });
    expect(collector.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 8888 });
    expect(collector.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 8888 });
    // The startup budget: the next container waits at most periodSeconds * failureThreshold.
    expect(collector.startupProbe.periodSeconds * collector.startupProbe.failureThreshold).toBe(30);
  });

  it('gets the downward-API environment for resource attributes', () => {
    const env = envOf(collector);
    const paths = Object.fromEntries(
      ['K8S_POD_NAME', 'K8S_NAMESPACE_NAME', 'K8S_NODE_NAME', 'K8S_POD_UID', 'K8S_POD_IP'].map((n) => [n, env[n]?.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(paths).toEqual({
      K8S_POD_NAME: 'metadata.name',
      K8S_NAMESPACE_NAME: 'metadata.namespace',
      K8S_NODE_NAME: 'spec.nodeName',
      K8S_POD_UID: 'metadata.uid',
      K8S_POD_IP: 'status.podIP',
    });
  });

  it('runs hardened: non-root uid, read-only root, no privilege escalation, no capabilities', () => {
    const sc = collector.securityContext;
    expect(sc.runAsNonRoot).toBe(true);
    expect(sc.runAsUser).toBeGreaterThan(0);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
  });

  it('lets the app reach the sidecar on localhost', () => {
    const appContainer = spec.containers.find((c: Obj) => c.name !== 'sidecar-collector');
    expect(envOf(appContainer).OTEL_EXPORTER_OTLP_ENDPOINT.value).toBe('http://localhost:4318');
  });
});

describe('classic-sidecar.yaml', () => {
  it('documents the shutdown-order caveat', () => {
    expect(text('classic-sidecar.yaml')).toMatch(/Shutdown order[^]*SIGTERM at the same moment/);
  });
});

describe('injector.yaml', () => {
  const objs = objects('injector.yaml');
  const hook = find(objs, 'MutatingWebhookConfiguration').webhooks[0];

  it('never blocks pods and only targets namespaces that opted in', () => {
    expect(hook.failurePolicy).toBe('Ignore');
    expect(hook.namespaceSelector).toEqual({ matchLabels: { 'sidecar-collector/injection': 'enabled' } });
    expect(hook.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    expect(hook.clientConfig.service.path).toBe('/mutate');
    // The injector's own namespace is not labelled for injection.
    expect(find(objs, 'Namespace').metadata.labels?.['sidecar-collector/injection']).toBeUndefined();
  });

  it('starts the injector with a config and flags the injector accepts', () => {
    const container = find(objs, 'Deployment').spec.template.spec.containers[0];
    expect(container.command).toEqual(['node', 'dist/deploy/injector/main.js']);
    const file = join(tmp, 'injector-config.yaml');
    writeFileSync(file, find(objs, 'ConfigMap', 'sidecar-injector-config').data['config.yaml']);
    const args = [...container.args];
    args[args.indexOf('--config') + 1] = file;
    const env = Object.fromEntries(container.env.filter((e: Obj) => e.name.startsWith('INJECTOR_')).map((e: Obj) => [e.name, e.value]));
    const cfg = loadInjectorConfig(args, env);
    expect(cfg.kubernetes_version).toBe('1.30');
    expect(cfg.namespace_defaults).toEqual({ shop: 'true' });
    expect(cfg.tls_cert_file).toBe('/etc/sidecar-injector/tls/tls.crt');
    expect(cfg.listen_address).toBe('0.0.0.0:8443');
    // the TLS files are on the Secret mount, as a directory so rotation reaches them
    const tlsMount = container.volumeMounts.find((m: Obj) => m.name === 'tls');
    expect(tlsMount.mountPath).toBe('/etc/sidecar-injector/tls');
    expect(tlsMount.subPath).toBeUndefined();
    // the example pods use the annotation the injector reads
    expect(INJECT_ANNOTATION).toBe('sidecar.opentelemetry.io/inject');
  });
});

describe('loadtest.yaml', () => {
  it('exports from the sidecar to the sink Service', () => {
    const objs = objects('loadtest.yaml');
    const cfg = parseYaml(find(objs, 'ConfigMap', 'sidecar-collector-config').data['config.yaml']) as Obj;
    const svc = find(objs, 'Service', 'loadtest-sink');
    expect(cfg.exporters.otlp.endpoint).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:4317`);
    expect(svc.spec.ports.map((p: Obj) => p.port)).toContain(4317);
    expect(find(objs, 'Job').spec.template.spec.restartPolicy).toBe('Never');
  });
});
