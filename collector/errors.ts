/**
 * Errors carry whether the sender may retry. Anything not marked permanent is
 * retryable (as in the Collector's consumererror package). Receivers map these
 * to OTLP status codes; exporters produce them from backend answers.
 */

export type ErrorCode =
  | 'ERR_RETRYABLE'
  | 'ERR_PERMANENT'
  | 'ERR_MEMORY_LIMIT'
  | 'ERR_QUEUE_FULL'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_BAD_DATA';

export class CollectorError extends Error {
  readonly code: ErrorCode;
  /** True when the same data may succeed later. */
  readonly retryable: boolean;
  /** Suggested delay before a retry, when known (RetryInfo / Retry-After). */
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, message: string, retryable: boolean, retryAfterMs?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CollectorError';
    this.code = code;
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Data that can never be accepted (malformed, rejected by the backend as invalid). */
export class PermanentError extends CollectorError {
  constructor(message: string, options?: { cause?: unknown }, code: ErrorCode = 'ERR_PERMANENT') {
    super(code, message, false, undefined, options);
    this.name = 'PermanentError';
  }
}

/**
 * The receiving side refused the data itself as invalid (HTTP 400, gRPC
 * INVALID_ARGUMENT): permanent for these bytes, though a part of them may be
 * fine, so an exporter may split the batch to find the bad part.
 */
export class InvalidDataError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'ERR_BAD_DATA');
    this.name = 'InvalidDataError';
  }
}

/** A transient failure: the sender should retry later. */
export class RetryableError extends CollectorError {
  constructor(message: string, retryAfterMs?: number, code: ErrorCode = 'ERR_RETRYABLE', options?: { cause?: unknown }) {
    super(code, message, true, retryAfterMs, options);
    this.name = 'RetryableError';
  }
}

/** Refused because the process is at its memory limit (maps to RESOURCE_EXHAUSTED / 429). */
export class MemoryLimitError extends RetryableError {
  constructor(message: string, retryAfterMs?: number) {
    super(message, retryAfterMs, 'ERR_MEMORY_LIMIT');
    this.name = 'MemoryLimitError';
  }
}

export function isPermanent(err: unknown): boolean {
  return err instanceof CollectorError && !err.retryable;
}

export function isRetryable(err: unknown): boolean {
  return !isPermanent(err);
}
