export { QueuedExporter, type SendFn, type SendResult, type HelperOptions } from './exporter.js';
export { MemoryQueue, type RequestQueue, type ExportRequest } from './queue.js';
export { realTimers, type Timers } from './timers.js';
export { CircuitBreaker, CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN } from './circuit.js';
export { HeaderSource } from './headers.js';
export { loadTlsFiles, type TlsMaterial } from './tls.js';
export * from './config.js';
export * from './otlpwire.js';
