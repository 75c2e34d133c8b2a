/**
 * The manifests against the Kubernetes OpenAPI schemas (the kubernetes-models
 * package: one generated model and JSON Schema per kind), and against its
 * TypeScript types, which know every field: the schemas accept fields they do
 * not define, the type checker (TypeScript's excess-property check on object
 * literals) does not, so a misspelt field fails here. No cluster is needed;
 * validate.test.ts covers what neither can see (references between fields
 * and between documents).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { formatProblem, schemaProblems } from './validate.js';

type Doc = { apiVersion: string; kind: string; metadata?: { name?: string } } & Record<string, any>;

const dir = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(dir, '..', '..');

const docs = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))
      .map((d) => d.toJS() as Doc | null)
      .filter((o): o is Doc => o !== null)
      .map((o) => [`${f}: ${o.kind}/${o.metadata?.name ?? '?'}`, o] as const),
  );

const schemaErrors = (o: unknown): string[] => schemaProblems(o).map(formatProblem);

/**
 * Type-checks objects against kubernetes-models' interfaces (`I<Kind>`) with
 * the project's TypeScript compiler. Returns one line per error, prefixed by
 * the object's index.
 */
function typeErrors(objects: readonly Doc[]): string[] {
  // Inside node_modules, so 'kubernetes-models' resolves from the project.
  const work = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache-k8s-types-'));
  try {
    const starts: number[] = [];
    let line = 1;
    let src = '';
    objects.forEach((o, i) => {
      starts.push(line);
      const body = `export const o${i}: import('kubernetes-models/${o.apiVersion}/${o.kind}').I${o.kind} = ${JSON.stringify(o, null, 1)};\n`;
      src += body;
      line += body.split('\n').length - 1;
    });
    const file = path.join(work, 'manifests.ts');
    fs.writeFileSync(file, src);
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--ignoreConfig', '--noEmit', '--strict', '--skipLibCheck', '--module', 'esnext', '--moduleResolution', 'bundler', '--target', 'es2022', file];
    try {
      execFileSync(process.execPath, [tsc, ...args], { cwd: work, stdio: 'pipe' });
      return [];
    } catch (e) {
      const out = String((e as { stdout?: Buffer }).stdout ?? '') + String((e as { stderr?: Buffer }).stderr ?? '');
      return out
        .split('\n')
        .filter((l) => l.includes('error TS'))
        .map((l) => {
          const at = Number(/\((\d+),\d+\)/.exec(l)?.[1] ?? 0);
          let idx = 0;
          while (idx + 1 < starts.length && starts[idx + 1] <= at) idx++;
          return `object ${idx} (line ${at - starts[idx] + 1}): ${l.replace(/^.*error /, '')}`;
        });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

describe('deploy manifests against the Kubernetes schemas', () => {
  it('has manifests to check', () => {
    expect(docs.length).toBeGreaterThanOrEqual(10);
  });

  it.each(docs)('%s is valid', (_name, o) => {
    expect(schemaErrors(o)).toEqual([]);
  });

  it('rejects a broken Deployment (so the check is real)', () => {
    const dep = docs.find(([n]) => n.startsWith('native-sidecar.yaml: Deployment'))![1];
    const broken = structuredClone(dep);
    broken.spec.replicas = 'two';
    expect(schemaErrors(broken).join('\n')).toMatch(/replicas: must be integer/);
    const noName = structuredClone(dep);
    delete noName.spec.template.spec.initContainers[0].name;
    expect(schemaErrors(noName).join('\n')).toMatch(/initContainers\[0\]: must have required property name/);
    const unknownKind = { ...structuredClone(dep), apiVersion: 'extensions/v1beta1' };
    expect(schemaErrors(unknownKind).join('\n')).toMatch(/unknown apiVersion\/kind extensions\/v1beta1 Deployment/);
  });
});

describe('deploy manifests against the Kubernetes types (no unknown field)', () => {
  it('every manifest has only fields its kind defines', () => {
    expect(typeErrors(docs.map(([, o]) => o))).toEqual([]);
  });

  it('reports misspelt fields (so the check is real)', () => {
    const dep = structuredClone(docs.find(([n]) => n.startsWith('native-sidecar.yaml: Deployment'))![1]);
    dep.spec.template.spec.initContainers[0].imagePulPolicy = 'Always';
    const svc = structuredClone(docs.find(([, o]) => o.kind === 'Service')![1]);
    svc.spec.selectr = svc.spec.selector;
    const errors = typeErrors([dep, svc]);
    expect(errors.some((e) => e.startsWith('object 0') && /'"?imagePulPolicy"?' does not exist in type 'IContainer'/.test(e)), errors.join('\n')).toBe(true);
    expect(errors.some((e) => e.startsWith('object 1') && /'"?selectr"?' does not exist/.test(e)), errors.join('\n')).toBe(true);
  });
});
