/**
 * The manifests against the Kubernetes OpenAPI schemas (the kubernetes-models
 * package: one generated model and JSON Schema per kind). No cluster is
 * needed; the structural checks in validate.test.ts cover what the schemas
 * cannot (cross-references, probes on the right port, sizes).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import * as coreV1 from 'kubernetes-models/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as admissionV1 from 'kubernetes-models/admissionregistration.k8s.io/v1';

const GROUPS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'batch/v1': batchV1,
  'policy/v1': policyV1,
  'rbac.authorization.k8s.io/v1': rbacV1,
  'admissionregistration.k8s.io/v1': admissionV1,
};

const dir = path.dirname(fileURLToPath(import.meta.url));

type Model = new (o: unknown) => { validate(): void };
async function modelFor(apiVersion: string, kind: string): Promise<Model> {
  const model = GROUPS[apiVersion]?.[kind] as Model | undefined;
  if (!model) throw new Error(`no schema loaded for ${apiVersion} ${kind}: add its group to GROUPS`);
  return model;
}

async function validate(o: { apiVersion: string; kind: string }): Promise<string | undefined> {
  const M = await modelFor(o.apiVersion, o.kind);
  try {
    new M(o).validate();
    return undefined;
  } catch (e) {
    return String((e as Error).message);
  }
}

const docs = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))
      .map((d) => d.toJS() as { apiVersion: string; kind: string; metadata?: { name?: string } } | null)
      .filter((o): o is { apiVersion: string; kind: string; metadata?: { name?: string } } => o !== null)
      .map((o) => [`${f}: ${o.kind}/${o.metadata?.name ?? '?'}`, o] as const),
  );

describe('deploy manifests against the Kubernetes schemas', () => {
  it('has manifests to check', () => {
    expect(docs.length).toBeGreaterThanOrEqual(10);
  });

  it.each(docs)('%s is valid', async (_name, o) => {
    expect(await validate(o)).toBeUndefined();
  });

  it('rejects a broken Deployment (so the check is real)', async () => {
    const dep = docs.find(([n]) => n.startsWith('native-sidecar.yaml: Deployment'))![1] as Record<string, any>;
    const broken = structuredClone(dep);
    broken.spec.replicas = 'two';
    expect(await validate(broken)).toMatch(/replicas/);
    const noName = structuredClone(dep);
    delete noName.spec.template.spec.initContainers[0].name;
    expect(await validate(noName)).toMatch(/name/);
  });
});
