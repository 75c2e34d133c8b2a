/** Exponential backoff with jitter (the Collector's retry_on_failure semantics). */
import { parseDuration } from '../../config/duration.js';
import type { RetryConfig } from './config.js';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  randomization: number;
  maxElapsedMs: number;
}

export function backoffPolicy(cfg: RetryConfig): BackoffPolicy {
  return {
    initialMs: parseDuration(cfg.initial_interval),
    maxMs: parseDuration(cfg.max_interval),
    multiplier: cfg.multiplier,
    randomization: cfg.randomization_factor,
    maxElapsedMs: parseDuration(cfg.max_elapsed_time),
  };
}

/** A wait drawn uniformly from [interval*(1-f), interval*(1+f)]. */
export function jitter(intervalMs: number, factor: number, random: () => number): number {
  if (factor === 0) return intervalMs;
  const delta = factor * intervalMs;
  return Math.round(intervalMs - delta + random() * 2 * delta);
}

export function nextInterval(intervalMs: number, p: BackoffPolicy): number {
  return Math.min(intervalMs * p.multiplier, p.maxMs);
}
