/**
 * Every component type the collector knows. Add a factory here to make a type
 * usable in config files (and in the generated JSON Schema).
 */
import type { ReceiverFactory, ProcessorFactory, ExporterFactory } from './component.js';
import { otlpReceiverFactory } from '../receivers/otlp/index.js';
import { batchProcessorFactory } from '../processors/batch/index.js';
import { memoryLimiterProcessorFactory } from '../processors/memory_limiter/index.js';
import { tailSamplingProcessorFactory } from '../processors/tail_sampling/index.js';
import { normalizeProcessorFactory } from '../processors/normalize/index.js';
import { otlpExporterFactory } from '../exporters/otlp/index.js';
import { otlpHttpExporterFactory } from '../exporters/otlphttp/index.js';
import { fileExporterFactory } from '../exporters/file/index.js';
import { debugExporterFactory } from '../exporters/debug/index.js';
import { loadBalancingExporterFactory, loadBalancingAliasExporterFactory } from '../exporters/loadbalancing/index.js';

export const receiverFactories: ReceiverFactory[] = [otlpReceiverFactory];
export const processorFactories: ProcessorFactory[] = [memoryLimiterProcessorFactory, batchProcessorFactory, tailSamplingProcessorFactory, normalizeProcessorFactory];
export const exporterFactories: ExporterFactory[] = [
  otlpExporterFactory,
  otlpHttpExporterFactory,
  fileExporterFactory,
  debugExporterFactory,
  loadBalancingExporterFactory,
  loadBalancingAliasExporterFactory,
];
