import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOCK_BYTES, PackOutput, type Opener } from '../../src/objects/pack-output.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

function einval(): Error {
  return Object.assign(new Error('EINVAL: invalid argument'), { code: 'EINVAL' });
}

describe('pack output (whole blocks, direct I/O where the file system takes it)', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** Appends `data` in uneven pieces and through the window, patches bytes 8..11, reads it back. */
  async function roundTrip(opener: Opener): Promise<{ data: Buffer; file: Buffer; streamed: string; reread: string }> {
    const path = join(tmp.make(), 'out');
    const data = pseudoRandomBytes(3 * BLOCK_BYTES + 12_345, 'pack output');
    const out = new PackOutput(path, 0o444, true, opener);
    await out.ready();
    let at = 0;
    for (let i = 0; at < data.length; i++) {
      const n = Math.min(data.length - at, 1 + ((i * 7919) % 200_000));
      const window = out.window(n);
      if (window !== undefined && i % 2 === 0) {
        data.copy(window, out.fill, at, at + n);
        out.advance(n);
      } else {
        out.append(data.subarray(at, at + n));
      }
      at += n;
      await out.whenWritable();
    }
    await out.finish();
    const streamed = out.streamedSha1().toString('hex');
    const patch = Buffer.from([1, 2, 3, 4]);
    await out.patch(8, patch);
    patch.copy(data, 8);
    const reread = (await out.sha1()).toString('hex');
    await out.sync();
    await out.close();
    return { data, file: readFileSync(path), streamed, reread };
  }

  function check(r: { data: Buffer; file: Buffer; streamed: string; reread: string }, original: string): void {
    assert.equal(r.file.length, r.data.length, 'the file has exactly the bytes appended (the padded last block is cut off)');
    assert.ok(r.file.equals(r.data));
    assert.equal(r.streamed, original, 'the streamed hash covers the bytes as appended');
    assert.equal(r.reread, sha1(r.data), 'the hash read back covers the file as patched');
  }

  const original = sha1(pseudoRandomBytes(3 * BLOCK_BYTES + 12_345, 'pack output'));

  it('writes through O_DIRECT when the file system takes it', async () => {
    const flags: Array<string | number> = [];
    const r = await roundTrip((path, f, mode) => {
      flags.push(f);
      return open(path, f, mode);
    });
    assert.ok(flags.some((f) => typeof f === 'number' && (f & constants.O_DIRECT) !== 0));
    check(r, original);
  });

  it('writes through the page cache when O_DIRECT is refused at open', async () => {
    check(await roundTrip((path, f, mode) => (typeof f === 'number' && (f & constants.O_DIRECT) !== 0 ? Promise.reject(einval()) : open(path, f, mode))), original);
  });

  it('writes through the page cache when O_DIRECT opens but the first write is refused', async () => {
    let refused = 0;
    const opener: Opener = async (path, f, mode) => {
      const fh = await open(path, f, mode);
      if (typeof f !== 'number' || (f & constants.O_DIRECT) === 0) return fh;
      return new Proxy(fh, {
        get(target, prop) {
          if (prop === 'write') {
            return () => {
              refused++;
              return Promise.reject(einval());
            };
          }
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }) as FileHandle;
    };
    check(await roundTrip(opener), original);
    assert.equal(refused, 1);
  });
});
