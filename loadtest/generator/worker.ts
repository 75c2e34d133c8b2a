/** Worker-thread entry: runs one GeneratorLoop and reports progress and the final result. */
import { parentPort, workerData } from 'node:worker_threads';
import { GeneratorLoop, type LoopConfig } from './loop.js';

const loop = new GeneratorLoop(workerData as LoopConfig);
parentPort!.on('message', (m: { type: string }) => {
  if (m.type === 'stop') loop.stop();
});
void loop
  .run((stats) => parentPort!.postMessage({ type: 'progress', stats }))
  .then(({ stats, truth }) => {
    parentPort!.postMessage({ type: 'done', stats, truth }, [
      truth.ids.buffer,
      truth.spans.buffer,
      truth.accepted.buffer,
      truth.classes.buffer,
      truth.durationMs.buffer,
      truth.uncertain.buffer,
    ] as ArrayBuffer[]);
  });
