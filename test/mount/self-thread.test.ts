/**
 * The mount's own thread (src/mount/self-thread.ts) in a process of its own: calls answered in
 * order, and an exit while the thread waits (here on a pipe nobody reads, as it would on the
 * mount) ends the process instead of waiting for ever on that thread.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

const THREAD_URL = new URL('../../src/mount/self-thread.js', import.meta.url);

/** Runs `body` (a module body, `thread` a SelfThread) in a new process: its exit and output; killed after 10 s (`hung`). */
async function run(body: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; hung: boolean }> {
  const dir = tempDir('self-thread');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'child.mjs');
  writeFileSync(script, `import { SelfThread } from ${JSON.stringify(THREAD_URL.href)};\nconst thread = new SelfThread((l) => console.log(l));\n${body}\n`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, 10_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, out, hung };
}

describe('mount/self-thread: the calls that wait on the mount, off the main thread and the pool', function () {
  this.timeout(30_000);
  after(cleanupTempDirs);

  it('answers stats and writes in order; a failed call gives its errno code', async () => {
    const r = await run(`
      import { openSync, readFileSync, statSync } from 'node:fs';
      const file = ${JSON.stringify(join(tempDir('self-thread-file'), 'f'))};
      const fd = openSync(file, 'w');
      const answers = await Promise.all([thread.write(fd, Buffer.from('one ')), thread.write(fd, Buffer.from('two')), thread.stat(file), thread.stat(file + '.missing'), thread.write(12345, Buffer.from('x'))]);
      console.log(JSON.stringify({ answers: answers.map((a) => (typeof a === 'object' ? { ino: String(a.ino), dev: a.dev } : a ?? null)), ino: String(statSync(file, { bigint: true }).ino), dev: statSync(file).dev, text: readFileSync(file, 'utf8') }));
      thread.close();
      await thread.ended(5000);
      console.log(JSON.stringify(await thread.write(fd, Buffer.from('late'))));
    `);
    assert.equal(r.code, 0, r.out);
    const lines = r.out.trim().split('\n');
    const got = JSON.parse(lines[0] ?? '') as { answers: unknown[]; ino: string; dev: number; text: string };
    assert.deepEqual(got.answers, [null, null, { ino: got.ino, dev: got.dev }, null, 'EBADF']);
    assert.equal(got.text, 'one two');
    assert.equal(lines[1], '"ENDED"', 'closed, a call fails at once');
  });

  it('once closed, runs none of the calls queued behind the one it is in, and ends when that returns', async () => {
    const dir = tempDir('self-thread-queue');
    const r = await run(`
      import { openSync, readFileSync, readSync } from 'node:fs';
      import { execFileSync } from 'node:child_process';
      const fifo = ${JSON.stringify(join(dir, 'pipe'))};
      const file = ${JSON.stringify(join(dir, 'queued'))};
      execFileSync('mkfifo', [fifo]);
      const pipe = openSync(fifo, 'r+');
      const out = openSync(file, 'w');
      const stuck = thread.write(pipe, Buffer.alloc(1 << 20));
      const queued = Array.from({ length: 100 }, () => thread.write(out, Buffer.from('x')));
      await new Promise((r) => setTimeout(r, 200));
      thread.close();
      console.log(JSON.stringify([...new Set(await Promise.all(queued))]));
      // The call it is in returns once the pipe is read.
      const buf = Buffer.alloc(1 << 16);
      let drained = 0;
      // Never more than was written: the pipe blocks a read when empty.
      const reading = setInterval(() => { if (drained < (1 << 20)) drained += readSync(pipe, buf, 0, Math.min(buf.length, (1 << 20) - drained)); }, 1);
      const began = Date.now();
      await thread.ended(5000);
      clearInterval(reading);
      console.log(JSON.stringify({ ms: Date.now() - began, queuedWritten: readFileSync(file, 'utf8').length, stuck: await Promise.race([stuck, 'pending']) }));
    `);
    assert.equal(r.code, 0, r.out);
    const lines = r.out.trim().split('\n');
    assert.equal(lines[0], '["ENDED"]', 'every queued call fails at the close');
    const got = JSON.parse(lines[1] ?? '') as { ms: number; queuedWritten: number; stuck: unknown };
    assert.equal(got.queuedWritten, 0, 'no queued write ran after the close');
    assert.equal(got.stuck, 'ENDED', 'the call it was in fails at the close too');
    assert.ok(got.ms < 4000, `ended ${got.ms} ms after its call could return`);
    assert.doesNotMatch(r.out, /still waits/);
  });

  it('an exit while the thread waits ends the process (SIGKILL) instead of waiting on the thread for ever; an idle thread lets it exit as it would', async () => {
    const waits = await run(`
      import { openSync } from 'node:fs';
      import { execFileSync } from 'node:child_process';
      const fifo = ${JSON.stringify(join(tempDir('self-thread-fifo'), 'pipe'))};
      execFileSync('mkfifo', [fifo]);
      // Opened for reading and writing: a write of more than the pipe holds waits for a reader.
      void thread.write(openSync(fifo, 'r+'), Buffer.alloc(1 << 20));
      setTimeout(() => { throw new Error('a fault while the thread waits'); }, 300);
    `);
    assert.ok(!waits.hung, `the process hung until the test killed it: ${waits.out}`);
    assert.equal(waits.signal, 'SIGKILL', `the process exited with code ${waits.code}: ${waits.out}`);
    assert.match(waits.out, /ended with SIGKILL, its own thread waiting on the mount, after: Error: a fault while the thread waits/);
    const idle = await run(`
      await thread.stat('/');
      setTimeout(() => { throw new Error('a fault while the thread is idle'); }, 300);
    `);
    assert.equal(idle.code, 1, idle.out);
    assert.equal(idle.signal, null);
  });
});
