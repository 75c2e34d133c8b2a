/**
 * Every component type the collector knows. Add a factory here to make a type
 * usable in config files (and in the generated JSON Schema).
 */
import type { ReceiverFactory, ProcessorFactory, ExporterFactory } from './component.js';

export const receiverFactories: ReceiverFactory[] = [];
export const processorFactories: ProcessorFactory[] = [];
export const exporterFactories: ExporterFactory[] = [];
