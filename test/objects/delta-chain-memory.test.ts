/**
 * A long chain of large deltas (as a pack from anywhere may hold: git index-pack accepts it) is
 * read with bounded memory: the deltas are not all held at once while the chain's base is looked
 * for. Measured as the peak RSS of a separate process that reads the chain's tip.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashObject } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { tempDirs } from '../support/tmp.js';
import { writeRawPack, type RawEntry } from './git-fixture.js';

const SIZE = 8 << 20;
const LINKS = 120;

/** A git delta from a base of `SIZE` bytes to `SIZE` bytes of `fill`: inserts only (they deflate to almost nothing). */
function insertDelta(fill: number): Buffer {
  const head = Buffer.from([0x80, 0x80, 0x80, 0x04, 0x80, 0x80, 0x80, 0x04]); // varints of 8 MiB, twice
  const ops = Buffer.alloc(Math.ceil(SIZE / 127) * 128, fill);
  let at = 0;
  for (let left = SIZE; left > 0; left -= 127) {
    const n = Math.min(127, left);
    ops[at] = n;
    at += n + 1;
  }
  return Buffer.concat([head, ops.subarray(0, at)]);
}

describe('a long chain of large deltas (pack-file.ts)', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it(`reads the tip of ${LINKS} deltas of 8 MiB each with a bounded peak (they were all held: ~1 GiB)`, async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const gitDir = repo.gitDir;
    await repo.close();
    const base = Buffer.alloc(SIZE, 0);
    let prev = hashObject('blob', base);
    const entries: RawEntry[] = [{ oid: prev, type: 'blob', content: base }];
    for (let i = 1; i <= LINKS; i++) {
      const oid = hashObject('blob', Buffer.alloc(SIZE, i));
      entries.push({ oid, type: 'ref', base: prev, delta: insertDelta(i) });
      prev = oid;
    }
    const packDir = join(gitDir, 'objects', 'pack');
    mkdirSync(packDir, { recursive: true });
    writeRawPack(packDir, entries);
    const reader = `
      import { readFileSync } from 'node:fs';
      import { Repository } from ${JSON.stringify(fileURLToPath(new URL('../../src/repo/repository.js', import.meta.url)))};
      const repo = await Repository.open(${JSON.stringify(gitDir)});
      const o = await repo.objects.read(${JSON.stringify(prev)});
      const wrong = o.content.findIndex((b) => b !== ${LINKS});
      await repo.close();
      // VmHWM, not getrusage: Linux keeps the parent's peak across fork and exec in the latter.
      const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      console.log(JSON.stringify({ size: o.content.length, wrong, maxRssKiB: Number(hwm?.[1]) }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', reader], { encoding: 'utf8' })) as { size: number; wrong: number; maxRssKiB: number };
    assert.deepEqual([out.size, out.wrong], [SIZE, -1], 'the tip read whole and right');
    const peakMiB = out.maxRssKiB / 1024;
    console.log(`      peak RSS reading the tip: ${peakMiB.toFixed(0)} MiB`);
    assert.ok(peakMiB < 400, `peak RSS ${peakMiB.toFixed(0)} MiB`);
  });
});
