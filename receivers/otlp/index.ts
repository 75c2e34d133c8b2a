import { accessSync, constants } from 'node:fs';
import type { ConfigProblem, ReceiverFactory } from '../../collector/component.js';
import { parseDuration } from '../../config/duration.js';
import { OtlpReceiverSchema, type AuthConfig, type ServerTlsConfig } from './config.js';
import { OtlpReceiver } from './receiver.js';

/** TLS and token files must be readable at start (they are re-read on change later). */
function fileProblems(proto: string, tls: ServerTlsConfig | undefined, auth: AuthConfig | undefined): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const check = (path: string[], file: string | undefined): void => {
    if (file === undefined) return;
    try {
      accessSync(file, constants.R_OK);
    } catch (e) {
      out.push({ path: ['protocols', proto, ...path], message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
    }
  };
  if (tls) {
    check(['tls', 'cert_file'], tls.cert_file);
    check(['tls', 'key_file'], tls.key_file);
    check(['tls', 'client_ca_file'], tls.client_ca_file);
  }
  if (auth) check(['auth', 'bearer_token_file'], auth.bearer_token_file);
  return out;
}

export const otlpReceiverFactory: ReceiverFactory<typeof OtlpReceiverSchema> = {
  kind: 'receiver',
  type: 'otlp',
  configSchema: OtlpReceiverSchema,
  signals: ['traces', 'logs', 'metrics'],
  validate(config) {
    const p = config.protocols;
    if (!p.grpc && !p.http) return [{ path: ['protocols'], message: 'enable at least one protocol (grpc or http)' }];
    const problems: ConfigProblem[] = [];
    if (p.grpc) problems.push(...fileProblems('grpc', p.grpc.tls, p.grpc.auth));
    if (p.http) {
      problems.push(...fileProblems('http', p.http.tls, p.http.auth));
      const header = parseDuration(p.http.read_header_timeout);
      const read = parseDuration(p.http.read_timeout);
      if (header > 0 && read > 0 && header > read) {
        problems.push({ path: ['protocols', 'http', 'read_header_timeout'], message: `must not exceed read_timeout (${p.http.read_timeout})` });
      }
    }
    return problems;
  },
  create(settings, config, next, consumers) {
    return new OtlpReceiver(settings, config, next, { consumers });
  },
};

export { OtlpReceiver };
