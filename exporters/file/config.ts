import { Type, type Static } from '@sinclair/typebox';

export const FileExporterConfigSchema = Type.Object(
  {
    path: Type.String({ default: './data/traces.jsonl', minLength: 1, description: 'File to append OTLP/JSON lines to (its directory is created).' }),
    rotation: Type.Object(
      {
        max_megabytes: Type.Number({ default: 100, exclusiveMinimum: 0, description: 'Rotate when the file would grow past this size (MiB).' }),
        max_backups: Type.Integer({ default: 3, minimum: 0, description: 'Rotated files kept (path.1 is the newest); 0 keeps none.' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {}, description: 'Writes each batch as one OTLP/JSON ExportTraceServiceRequest per line.' },
);

export type FileExporterConfig = Static<typeof FileExporterConfigSchema>;
