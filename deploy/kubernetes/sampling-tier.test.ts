/**
 * The sampling-tier manifests: every collector config loads with the real
 * loader, the tier listens beyond localhost and restores traces with a grace
 * longer than the sidecars' retry interval, the sidecars route to the
 * StatefulSet's stable names, and the RBAC lets the k8s resolver watch the
 * Service's EndpointSlices. (schemas.test.ts checks every object against the
 * Kubernetes schemas.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfigText } from '../../config/load.js';
import { parseDuration } from '../../config/duration.js';

type Obj = Record<string, any>;
const objs = parseAllDocuments(readFileSync(join(import.meta.dirname, 'sampling-tier.yaml'), 'utf8')).map((d) => d.toJS() as Obj);
const find = (kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
const load = (cm: string) => loadConfigText(find('ConfigMap', cm).data['config.yaml'], `sampling-tier.yaml:${cm}`, { env: {} });

describe('deploy/kubernetes/sampling-tier.yaml', () => {
  const tier = load('sampler-config');
  const sidecar = load('sidecar-collector-config-tier');
  const sts = find('StatefulSet', 'sampler');
  const svc = find('Service', 'sampler');

  it('the tier receives on all interfaces and keeps its buffers on the claimed volume', () => {
    expect((tier.receivers.get('otlp')!.config as Obj).protocols.grpc.endpoint).toBe('0.0.0.0:4317');
    const ts = tier.processors.get('tail_sampling')!.config as Obj;
    const q = (tier.exporters.get('otlp')!.config as Obj).sending_queue;
    const mount = sts.spec.template.spec.containers[0].volumeMounts.find((m: Obj) => m.name === 'buffer');
    expect(ts.buffer.disk.directory.startsWith(mount.mountPath + '/')).toBe(true);
    expect(q.directory.startsWith(mount.mountPath + '/')).toBe(true);
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('buffer');
  });

  it('restored traces wait longer than the sidecars take to re-send, and a restart does not move keys', () => {
    const ts = tier.processors.get('tail_sampling')!.config as Obj;
    const lb = sidecar.exporters.get('loadbalancing')!.config as Obj;
    expect(parseDuration(ts.buffer.disk.restore_grace)).toBeGreaterThan(parseDuration(lb.protocol.otlp.retry_on_failure.max_interval));
    // Stable StatefulSet names, one per replica, through the headless Service.
    expect(lb.resolver.static.hostnames).toEqual(
      Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}.${svc.metadata.name}.${sts.metadata.namespace}.svc.cluster.local:4317`),
    );
    expect(sts.spec.serviceName).toBe(svc.metadata.name);
    expect(svc.spec.clusterIP).toBe('None');
    // A restarting instance keeps its keys: reroute_after is longer than the pod's grace period.
    expect(parseDuration(lb.reroute_after) / 1000).toBeGreaterThan(sts.spec.template.spec.terminationGracePeriodSeconds);
    // Pending traces are written at SIGTERM within the shutdown timeout, inside the grace period.
    expect(tier.service.shutdownTimeoutMs / 1000).toBeLessThan(sts.spec.template.spec.terminationGracePeriodSeconds);
    expect(tier.service.shutdownDelayMs).toBe(0);
  });

  it('has a PDB that keeps all but one instance up, and probes on the telemetry port', () => {
    const pdb = find('PodDisruptionBudget', 'sampler');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(sts.spec.selector.matchLabels);
    const c = sts.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources.limits.memory).toBeDefined();
  });

  it('RBAC lets the sidecars\' service account get, list and watch EndpointSlices in the tier\'s namespace', () => {
    const role = find('Role', 'sampler-endpointslices-reader');
    const rb = find('RoleBinding', 'traced-app-reads-sampler-endpointslices');
    expect(role.metadata.namespace).toBe(svc.metadata.namespace);
    expect(role.rules[0]).toEqual({ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] });
    expect(rb.roleRef.name).toBe(role.metadata.name);
    const sa = find('ServiceAccount', 'traced-app');
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  });
});
