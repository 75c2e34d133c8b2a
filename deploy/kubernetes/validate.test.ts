/**
 * The validator itself: each deliberately broken variant of a real manifest
 * must be reported with the expected message, so a green manifests test means
 * something.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblem, validateManifestText, validateObjects, validatePod } from './validate.js';

type Obj = Record<string, any>;

const dir = import.meta.dirname;
const load = (f: string): Obj[] => validateManifestText(readFileSync(join(dir, f), 'utf8')).objects as Obj[];

function problemsAfter(file: string, edit: (objs: Obj[]) => void, crossReferences = true): string[] {
  const objs = structuredClone(load(file));
  edit(objs);
  return validateObjects(objs, { crossReferences }).map(formatProblem);
}

const byKind = (objs: Obj[], kind: string): Obj => {
  const o = objs.find((x) => x.kind === kind);
  if (!o) throw new Error(`no ${kind}`);
  return o;
};
const podSpec = (objs: Obj[]): Obj => byKind(objs, 'Deployment').spec.template.spec;
const sidecar = (objs: Obj[]): Obj => podSpec(objs).initContainers[0];
const app = (objs: Obj[]): Obj => podSpec(objs).containers[0];

describe('kubernetes manifest validator', () => {
  it('accepts the unmodified example', () => {
    expect(problemsAfter('native-sidecar.yaml', () => {})).toEqual([]);
  });

  const cases: Array<[string, string, (o: Obj[]) => void, RegExp]> = [
    ['selector not matching the template', 'native-sidecar.yaml', (o) => (byKind(o, 'Deployment').spec.selector.matchLabels = { app: 'other' }), /spec\.selector: does not match spec\.template\.metadata\.labels/],
    ['mount of an undefined volume', 'native-sidecar.yaml', (o) => (sidecar(o).volumeMounts[1].name = 'buffer-typo'), /mounts volume "buffer-typo", which the pod does not define/],
    ['restartPolicy on a regular container', 'native-sidecar.yaml', (o) => (app(o).restartPolicy = 'Always'), /only init containers may set restartPolicy/],
    ['init container with probes but no restartPolicy', 'native-sidecar.yaml', (o) => delete sidecar(o).restartPolicy, /init containers may set startupProbe only as native sidecars/],
    ['init container restartPolicy other than Always', 'native-sidecar.yaml', (o) => (sidecar(o).restartPolicy = 'OnFailure'), /restartPolicy: must be one of Always/],
    ['probe on an undeclared named port', 'native-sidecar.yaml', (o) => (sidecar(o).readinessProbe.httpGet.port = 'metrics'), /names port "metrics", which the container does not declare/],
    ['malformed quantity', 'native-sidecar.yaml', (o) => (sidecar(o).resources.limits.memory = '256MB'), /resources\.limits\.memory: must be number; must match format "quantity"/],
    ['request above limit', 'native-sidecar.yaml', (o) => (sidecar(o).resources.requests.memory = '1Gi'), /request .* is above the limit/],
    ['unquoted number in env', 'native-sidecar.yaml', (o) => (app(o).env[0].value = 8080), /env\[0\]\.value: must be string/],
    ['boolean annotation value', 'native-sidecar.yaml', (o) => (byKind(o, 'Deployment').spec.template.metadata.annotations = { 'sidecar.opentelemetry.io/inject': true }), /annotations\["sidecar\.opentelemetry\.io\/inject"\]: must be string/],
    ['duplicate container name', 'native-sidecar.yaml', (o) => (app(o).name = 'sidecar-collector'), /duplicate container name "sidecar-collector"/],
    ['root with runAsNonRoot', 'native-sidecar.yaml', (o) => (sidecar(o).securityContext.runAsUser = 0), /runAsNonRoot is true but runAsUser is 0/],
    ['removed API version', 'native-sidecar.yaml', (o) => (byKind(o, 'Deployment').apiVersion = 'extensions/v1beta1'), /unknown apiVersion\/kind extensions\/v1beta1 Deployment/],
    ['ConfigMap volume of a missing ConfigMap', 'native-sidecar.yaml', (o) => (podSpec(o).volumes[0].configMap.name = 'nope'), /ConfigMap nope is not in these manifests/],
    ['webhook without sideEffects', 'injector.yaml', (o) => delete byKind(o, 'MutatingWebhookConfiguration').webhooks[0].sideEffects, /webhooks\[0\]: must have required property sideEffects/],
    ['webhook pointing at a missing Service', 'injector.yaml', (o) => (byKind(o, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.service.name = 'gone'), /Service sidecar-collector-system\/gone is not in these manifests/],
    ['webhook on a port the Service lacks', 'injector.yaml', (o) => (byKind(o, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.service.port = 8443), /has no port 8443/],
    ['Service selecting nothing', 'injector.yaml', (o) => (byKind(o, 'Service').spec.selector = { app: 'none' }), /selects no pod template/],
    ['Service targetPort name not declared', 'injector.yaml', (o) => (byKind(o, 'Service').spec.ports[0].targetPort = 'webhook'), /no selected container declares a port named "webhook"/],
    ['missing ServiceAccount', 'injector.yaml', (o) => (byKind(o, 'ServiceAccount').metadata.name = 'other'), /ServiceAccount sidecar-injector is not in these manifests/],
    ['Job with restartPolicy Always', 'loadtest.yaml', (o) => (byKind(o, 'Job').spec.template.spec.restartPolicy = 'Always'), /a Job needs Never or OnFailure/],
    ['object in a namespace not created', 'loadtest.yaml', (o) => (byKind(o, 'Job').metadata.namespace = 'elsewhere'), /namespace "elsewhere" is not created/],
  ];
  for (const [name, file, edit, expected] of cases) {
    it(`reports ${name}`, () => {
      const problems = problemsAfter(file, edit);
      expect(problems.some((p) => expected.test(p)), `expected ${expected} among:\n${problems.join('\n')}`).toBe(true);
    });
  }

  it('reports YAML syntax errors with the document', () => {
    const { problems } = validateManifestText('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0].message).toMatch(/^YAML:/);
  });

  it('validates a bare pod (used on the injector output)', () => {
    expect(validatePod({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'x-' }, spec: { containers: [{ name: 'a', image: 'b' }] } })).toEqual([]);
    expect(validatePod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: {} }).map(formatProblem)).toEqual([
      'Pod/x spec: must have required property containers',
    ]);
  });
});
