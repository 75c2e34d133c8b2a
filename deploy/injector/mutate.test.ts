/**
 * The injector's decisions on AdmissionReview fixtures of real-looking pods
 * (deploy/injector/testdata): exact JSON patches, the pods they produce
 * (applied with a small RFC 6902 applier and checked by the manifest
 * validator), the cases left alone, and malformed requests.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblem, validatePod } from '../kubernetes/validate.js';
import { InjectorConfigError, heapMiB, loadInjectorConfig, optionsTable, useNativeSidecar } from './config.js';
import { answerReview, compileSettings, escapeJsonPointer, HOLD_UNTIL_READY_SCRIPT, type JsonPatchOp, type SidecarSettings } from './mutate.js';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';

type Obj = Record<string, any>;

// ---------- a small RFC 6902 applier (add / remove / replace / test) ----------

function unescapeSegment(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function applyPatch(doc: unknown, ops: readonly { op: string; path: string; value?: unknown }[]): unknown {
  let root = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') {
      if (op.op === 'add' || op.op === 'replace') root = structuredClone(op.value);
      else throw new Error(`unsupported root ${op.op}`);
      continue;
    }
    if (!op.path.startsWith('/')) throw new Error(`bad pointer ${op.path}`);
    const segs = op.path.slice(1).split('/').map(unescapeSegment);
    const last = segs.pop()!;
    let parent: any = root;
    for (const s of segs) {
      if (Array.isArray(parent)) {
        if (!/^(0|[1-9][0-9]*)$/.test(s) || Number(s) >= parent.length) throw new Error(`no index ${s} in ${op.path}`);
        parent = parent[Number(s)];
      } else if (parent !== null && typeof parent === 'object' && s in parent) {
        parent = parent[s];
      } else {
        throw new Error(`path ${op.path} does not exist (at ${s})`);
      }
    }
    if (parent === null || typeof parent !== 'object') throw new Error(`parent of ${op.path} is not a container`);
    if (Array.isArray(parent)) {
      const idx = last === '-' ? parent.length : Number(last);
      if (!(last === '-' || /^(0|[1-9][0-9]*)$/.test(last))) throw new Error(`bad index ${last}`);
      if (op.op === 'add') {
        if (idx > parent.length) throw new Error(`index ${idx} out of range in ${op.path}`);
        parent.splice(idx, 0, structuredClone(op.value));
      } else if (op.op === 'remove' || op.op === 'replace') {
        if (idx >= parent.length) throw new Error(`index ${idx} out of range in ${op.path}`);
        if (op.op === 'remove') parent.splice(idx, 1);
        else parent[idx] = structuredClone(op.value);
      } else if (op.op === 'test') {
        expect(parent[idx]).toEqual(op.value);
      } else throw new Error(`unsupported op ${op.op}`);
    } else {
      if (op.op === 'add') parent[last] = structuredClone(op.value);
      else if (op.op === 'replace' || op.op === 'remove') {
        if (!(last in parent)) throw new Error(`no member ${last} for ${op.op} at ${op.path}`);
        if (op.op === 'remove') delete parent[last];
        else parent[last] = structuredClone(op.value);
      } else if (op.op === 'test') expect(parent[last]).toEqual(op.value);
      else throw new Error(`unsupported op ${op.op}`);
    }
  }
  return root;
}

// ---------- fixtures ----------

const testdata = join(import.meta.dirname, 'testdata');
const raw = (name: string): string => readFileSync(join(testdata, name), 'utf8');
const review = (name: string): Obj => JSON.parse(raw(`${name}.json`));

const nativeCfg = loadInjectorConfig(['--kubernetes-version', '1.30', '--namespace-defaults', 'team-a=true'], {});
const native = compileSettings(nativeCfg);
const classic = compileSettings(loadInjectorConfig(['--native-sidecar', 'false'], {}));

function decode(answer: ReturnType<typeof answerReview>): JsonPatchOp[] | null {
  const p = answer.body.response?.patch;
  return p === undefined ? null : JSON.parse(Buffer.from(p as string, 'base64').toString('utf8'));
}

function mutate(name: string, s: SidecarSettings = native): { answer: ReturnType<typeof answerReview>; patch: JsonPatchOp[] | null; pod: Obj; patched: Obj | null } {
  const r = review(name);
  const answer = answerReview(JSON.stringify(r), s);
  const patch = decode(answer);
  return { answer, patch, pod: r.request.object, patched: patch ? (applyPatch(r.request.object, patch) as Obj) : null };
}

describe('json pointer escaping', () => {
  it('escapes ~ before / (RFC 6901)', () => {
    expect(escapeJsonPointer('sidecar-collector/injected')).toBe('sidecar-collector~1injected');
    expect(escapeJsonPointer('a~1/b')).toBe('a~01~1b');
    expect(unescapeSegment(escapeJsonPointer('a~1/b~0'))).toBe('a~1/b~0');
  });
});

describe.each([
  ['annotated-true', 'sidecar-collector-config', native, 'annotated-true.patch.json'],
  ['named-config-with-init', 'orders-collector', native, 'named-config-with-init.patch.json'],
  ['no-volumes', 'payments-collector', native, 'no-volumes.patch.json'],
  ['namespace-default', 'sidecar-collector-config', native, 'namespace-default.patch.json'],
  ['no-volumes', 'payments-collector', classic, 'no-volumes.classic.patch.json'],
] as const)('injecting %s (config %s)', (name, configMap, settings, expectedFile) => {
  const isNative = settings.native;
  const { answer, patch, pod, patched } = mutate(name, settings);

  it('answers allowed with the expected JSON patch', () => {
    const r = review(name);
    expect(answer.status).toBe(200);
    expect(answer.body.apiVersion).toBe('admission.k8s.io/v1');
    expect(answer.body.kind).toBe('AdmissionReview');
    expect(answer.body.response).toMatchObject({ uid: r.request.uid, allowed: true, patchType: 'JSONPatch' });
    expect(answer.body.response.warnings).toBeUndefined();
    expect(patch).toEqual(JSON.parse(raw(expectedFile)));
  });

  it('produces a valid pod with the sidecar where it belongs', () => {
    expect(validatePod(patched).map(formatProblem)).toEqual([]);
    const spec = patched!.spec;
    if (isNative) {
      expect(spec.initContainers[0].name).toBe('sidecar-collector');
      expect(spec.initContainers[0].restartPolicy).toBe('Always');
      // existing init containers keep their order after the sidecar
      expect(spec.initContainers.slice(1)).toEqual(pod.spec.initContainers ?? []);
      expect(spec.containers).toEqual(pod.spec.containers);
    } else {
      expect(spec.containers[0].name).toBe('sidecar-collector');
      expect(spec.containers[0].restartPolicy).toBeUndefined();
      expect(spec.containers[0].lifecycle.postStart.exec.command[2]).toBe(HOLD_UNTIL_READY_SCRIPT);
      expect(spec.containers.slice(1)).toEqual(pod.spec.containers);
      expect(spec.initContainers).toEqual(pod.spec.initContainers);
      expect(patched!.metadata.annotations['kubectl.kubernetes.io/default-container']).toBe(pod.spec.containers[0].name);
    }
    // volumes: the pod's own first, then the config and the buffer
    expect(spec.volumes.slice(0, (pod.spec.volumes ?? []).length)).toEqual(pod.spec.volumes ?? []);
    expect(spec.volumes.find((v: Obj) => v.name === 'sidecar-collector-config')).toEqual({ name: 'sidecar-collector-config', configMap: { name: configMap } });
    expect(spec.volumes.find((v: Obj) => v.name === 'sidecar-collector-buffer')).toEqual({ name: 'sidecar-collector-buffer', emptyDir: { sizeLimit: '1Gi' } });
    // earlier annotations survive, and the status one is added
    for (const [k, v] of Object.entries(pod.metadata.annotations ?? {})) expect(patched!.metadata.annotations[k]).toBe(v);
    expect(patched!.metadata.annotations['sidecar-collector/injected']).toBe(isNative ? 'native' : 'classic');
    expect(answer.result?.configMap).toBe(configMap);
  });

  it('is idempotent: the patched pod is left alone', () => {
    const again = review(name);
    again.request.object = patched;
    const second = answerReview(JSON.stringify(again), settings);
    expect(second.body.response).toEqual({ uid: again.request.uid, allowed: true });
    expect(second.result?.reason).toBe('already_injected');
  });
});

describe.each([
  ['not-annotated', 'not_requested', []],
  ['opted-out', 'opted_out', []],
  ['already-injected', 'already_injected', []],
  ['cross-namespace', 'invalid_target', [/ConfigMap observability\/shared-collector is in another namespace and cannot be mounted by a pod in shop/]],
  ['unusable-pod', 'unusable_pod', [/spec\.containers is missing or empty; sidecar not injected/]],
] as const)('leaving %s unchanged', (name, reason, warnings) => {
  it('answers allowed with no patch', () => {
    const r = review(name);
    const answer = answerReview(JSON.stringify(r), native);
    expect(answer.status).toBe(200);
    expect(answer.result?.reason).toBe(reason);
    const response = answer.body.response as Obj;
    expect(response.uid).toBe(r.request.uid);
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.patchType).toBeUndefined();
    const got: string[] = response.warnings ?? [];
    expect(got.length).toBe(warnings.length);
    warnings.forEach((w, i) => expect(got[i]).toMatch(w));
  });
});

describe('annotation precedence', () => {
  const withAnnotation = (ns: string, value: string | undefined): Obj => {
    const r = review('annotated-true');
    r.request.namespace = ns;
    r.request.object.metadata.namespace = ns;
    if (value === undefined) delete r.request.object.metadata.annotations['sidecar.opentelemetry.io/inject'];
    else r.request.object.metadata.annotations['sidecar.opentelemetry.io/inject'] = value;
    return r;
  };
  const settings = compileSettings(loadInjectorConfig(['--native-sidecar', 'true', '--namespace-defaults', 'team-a=true,team-b=false,team-c=team-c-collector'], {}));
  const decide = (r: Obj) => answerReview(JSON.stringify(r), settings).result!;

  it('the pod annotation beats the namespace default', () => {
    expect(decide(withAnnotation('team-a', 'false')).reason).toBe('opted_out');
    expect(decide(withAnnotation('team-b', 'true')).reason).toBe('injected');
    expect(decide(withAnnotation('team-c', 'mine')).configMap).toBe('mine');
  });

  it('falls back to the namespace default without a pod annotation', () => {
    expect(decide(withAnnotation('team-a', undefined)).configMap).toBe('sidecar-collector-config');
    expect(decide(withAnnotation('team-b', undefined)).reason).toBe('opted_out');
    expect(decide(withAnnotation('team-c', undefined)).configMap).toBe('team-c-collector');
    expect(decide(withAnnotation('elsewhere', undefined)).reason).toBe('not_requested');
    expect(decide(withAnnotation('team-a', '  ')).reason).toBe('injected'); // empty value = no annotation
  });

  it('accepts NAMESPACE/NAME in the pod namespace, and TRUE in any case', () => {
    expect(decide(withAnnotation('team-c', 'team-c/other')).configMap).toBe('other');
    expect(decide(withAnnotation('shop', 'True')).configMap).toBe('sidecar-collector-config');
  });

  it('refuses invalid ConfigMap names with a warning, never the pod', () => {
    const r = withAnnotation('shop', 'Not_A_Name');
    const a = answerReview(JSON.stringify(r), settings);
    expect(a.body.response).toMatchObject({ allowed: true });
    expect((a.body.response as Obj).warnings[0]).toMatch(/not a valid ConfigMap name/);
    expect((a.body.response as Obj).patch).toBeUndefined();
  });

  it('uses the pod namespace from the object when the request lacks one', () => {
    const r = withAnnotation('team-a', undefined);
    delete r.request.namespace;
    expect(decide(r).reason).toBe('injected');
  });
});

describe('requests the injector does not mutate', () => {
  it('lets UPDATE and non-pod kinds through without a patch', () => {
    const upd = review('annotated-true');
    upd.request.operation = 'UPDATE';
    expect(answerReview(JSON.stringify(upd), native).body.response).toEqual({ uid: upd.request.uid, allowed: true });
    const dep = review('annotated-true');
    dep.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    expect(answerReview(JSON.stringify(dep), native).body.response).toEqual({ uid: dep.request.uid, allowed: true });
  });

  it('a pod with a volume of the sidecar volume name is warned about, not broken', () => {
    const r = review('annotated-true');
    r.request.object.spec.volumes.push({ name: 'sidecar-collector-buffer', emptyDir: {} });
    const a = answerReview(JSON.stringify(r), native);
    expect((a.body.response as Obj).patch).toBeUndefined();
    expect((a.body.response as Obj).warnings[0]).toMatch(/already has a volume named sidecar-collector-buffer/);
  });
});

describe('malformed requests', () => {
  it.each([
    ['bad JSON', '{"apiVersion": "admission.k8s.io/v1", "kind": ', /^request body is not valid JSON/],
    ['a pod instead of a review', raw('not-a-review.json'), /^request body is not an AdmissionReview$/],
    ['a JSON array', '[]', /^request body is not an AdmissionReview$/],
    ['admission.k8s.io/v1beta1', raw('v1beta1-review.json'), /^unsupported AdmissionReview apiVersion "admission\.k8s\.io\/v1beta1"/],
    ['a review without request', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', /^AdmissionReview has no request\.uid$/],
    ['a review with an empty uid', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}', /^AdmissionReview has no request\.uid$/],
  ])('%s -> 400 with a message', (_name, body, message) => {
    const a = answerReview(body, native);
    expect(a.status).toBe(400);
    expect(a.body.error).toMatch(message);
    expect(a.body.response).toBeUndefined();
  });

  it('a review whose object is not a pod object -> allowed with a warning', () => {
    const r = review('annotated-true');
    r.request.object = 'garbage';
    const a = answerReview(JSON.stringify(r), native);
    expect(a.status).toBe(200);
    expect(a.body.response).toEqual({ uid: r.request.uid, allowed: true, warnings: ['sidecar injector: the admission request has no pod object; sidecar not injected'] });
  });
});

describe('injector config', () => {
  it('layers defaults < file < env < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'injector-config-'));
    try {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, 'image: from-file:1\nmemory_limit: 512Mi\nnamespace_defaults:\n  shop: "true"\ncpu_request: 100m\n');
      const cfg = loadInjectorConfig(['--config', file, '--cpu-request=200m'], { INJECTOR_IMAGE: 'from-env:2', INJECTOR_CPU_REQUEST: '150m' });
      expect(cfg.image).toBe('from-env:2');
      expect(cfg.cpu_request).toBe('200m');
      expect(cfg.memory_limit).toBe('512Mi');
      expect(cfg.namespace_defaults).toEqual({ shop: 'true' });
      expect(heapMiB(cfg)).toBe(320);
      expect(cfg.config_map).toBe('sidecar-collector-config');

      writeFileSync(file, 'imagee: x\n');
      expect(() => loadInjectorConfig(['--config', file])).toThrow(/unknown key imagee; did you mean image\?/);
      writeFileSync(file, 'namespace_defaults:\n  shop: true\n');
      expect(() => loadInjectorConfig(['--config', file])).toThrow(/namespace_defaults\.shop: must be a string/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad values naming where they came from', () => {
    expect(() => loadInjectorConfig(['--memory-limit', '256MB'])).toThrow(InjectorConfigError);
    expect(() => loadInjectorConfig(['--memory-limit', '256MB'])).toThrow(/flag --memory-limit: invalid quantity "256MB"/);
    expect(() => loadInjectorConfig([], { INJECTOR_NATIVE_SIDECAR: 'maybe' })).toThrow(/env INJECTOR_NATIVE_SIDECAR: must be true, false or auto/);
    expect(() => loadInjectorConfig(['--imag', 'x'])).toThrow(/unknown flag --imag; did you mean image\?/);
    expect(() => loadInjectorConfig(['--tls-reload-interval', 'soon'])).toThrow(/invalid duration/);
    expect(() => loadInjectorConfig(['--kubernetes-version', 'latest'])).toThrow(/MAJOR\.MINOR/);
  });

  it('selects the native sidecar from the cluster version, classic when unknown', () => {
    expect(useNativeSidecar({ native_sidecar: 'auto', kubernetes_version: '' })).toBe(false);
    expect(useNativeSidecar({ native_sidecar: 'auto', kubernetes_version: '1.28' })).toBe(false);
    expect(useNativeSidecar({ native_sidecar: 'auto', kubernetes_version: 'v1.29.3' })).toBe(true);
    expect(useNativeSidecar({ native_sidecar: 'auto', kubernetes_version: '1.33' })).toBe(true);
    expect(useNativeSidecar({ native_sidecar: 'false', kubernetes_version: '1.33' })).toBe(false);
    expect(useNativeSidecar({ native_sidecar: 'true', kubernetes_version: '' })).toBe(true);
    expect(heapMiB({ heap_mib: 0, memory_limit: '256Mi' })).toBe(160);
    expect(heapMiB({ heap_mib: 100, memory_limit: '256Mi' })).toBe(100);
  });

  it('the README lists every option as the code defines it', () => {
    const readme = readFileSync(join(import.meta.dirname, 'README.md'), 'utf8');
    expect(readme).toContain(optionsTable());
  });
});

describe('classic-mode postStart hold', () => {
  it('waits until /readyz answers 200, then exits 0', async () => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls++;
      res.statusCode = calls < 3 ? 503 : 200;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['-e', HOLD_UNTIL_READY_SCRIPT.replace('127.0.0.1:8888', `127.0.0.1:${port}`)], { stdio: 'ignore' });
        child.on('exit', resolve);
      });
      expect(code).toBe(0);
      expect(calls).toBe(3);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
