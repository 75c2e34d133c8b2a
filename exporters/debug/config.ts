import { Type, type Static } from '@sinclair/typebox';

export const DebugExporterConfigSchema = Type.Object(
  {
    verbosity: Type.Union([Type.Literal('basic'), Type.Literal('normal')], {
      default: 'basic',
      description: 'basic: counts of spans, traces and resources per batch; normal: also the span names.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Logs a one-line summary of every batch.' },
);

export type DebugExporterConfig = Static<typeof DebugExporterConfigSchema>;
