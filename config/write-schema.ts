/**
 * Writes config/schema.json (the JSON Schema of the config file) from the
 * registered component factories: `npm run build && npm run schema`.
 * An optional argument overrides the output path.
 */
import { writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { receiverFactories, processorFactories, exporterFactories } from '../collector/components.js';
import { schemaText } from './schema.js';

// This file runs as dist/config/write-schema.js; the schema belongs in the source tree's config/.
const here = dirname(fileURLToPath(import.meta.url));
const parent = dirname(here);
const root = basename(parent) === 'dist' ? dirname(parent) : parent;
const out = process.argv[2] ? resolve(process.argv[2]) : join(root, 'config', 'schema.json');

writeFileSync(out, schemaText({ receivers: receiverFactories, processors: processorFactories, exporters: exporterFactories }));
const n = receiverFactories.length + processorFactories.length + exporterFactories.length;
process.stdout.write(`wrote ${out} (${n} component types)\n`);
