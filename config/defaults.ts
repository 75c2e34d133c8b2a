/** Fills a component config with the defaults its schema declares (for tests and programmatic use). */
import type { TSchema, Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export function withDefaults<S extends TSchema>(schema: S, partial: unknown = {}): Static<S> {
  return Value.Default(schema, structuredClone(partial ?? {})) as Static<S>;
}
