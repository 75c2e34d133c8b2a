/**
 * Test certificates made with the openssl CLI (node:crypto cannot issue
 * X.509 certificates): a CA, and server or client certificates it signs.
 * EC P-256 keys: a chain takes a few tens of milliseconds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const haveOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

export interface Pem {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  fingerprint: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function read(certFile: string, keyFile: string): Pem {
  const cert = readFileSync(certFile);
  return { certFile, keyFile, cert, key: readFileSync(keyFile), fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** A self-signed CA named `name` in `dir`. */
export function makeCa(dir: string, name: string): Pem {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', ...EC, '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'ignore' });
  return read(certFile, keyFile);
}

/** A certificate signed by `ca`: for a server on 127.0.0.1/localhost, or for a client. */
export function makeSigned(dir: string, ca: Pem, name: string, kind: 'server' | 'client'): Pem {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  execFileSync('openssl', ['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`], { stdio: 'ignore' });
  writeFileSync(ext, kind === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '1', '-extfile', ext], { stdio: 'ignore' });
  return read(certFile, keyFile);
}
