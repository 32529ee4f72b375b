/** Worker thread for bulk reads: runs of blob entries (blob-run.ts) and ranges of chunked files (chunked-range.ts). */
import { parentPort } from 'node:worker_threads';
import { checkRun, type BlobRunJob } from './blob-run.js';
import { prepareIndexes, readRange, type PrepareJob, type RangeJob } from './chunked-range.js';

parentPort?.on('message', (job: BlobRunJob | RangeJob | PrepareJob) => {
  if ('kind' in job && job.kind === 'prepare') {
    prepareIndexes(job);
    parentPort?.postMessage({ id: job.id, buffer: undefined });
    return;
  }
  if ('kind' in job) {
    const result = readRange(job);
    parentPort?.postMessage(result, result.buffer === undefined ? [] : [result.buffer]);
    return;
  }
  const result = checkRun(job);
  parentPort?.postMessage(result, [result.buffer, result.checked.buffer as ArrayBuffer]);
});
