/** A small source tree with every kind of entry gitfs stores, plus some it cannot. */
import { chmodSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { compressibleBytes, pseudoRandomBytes } from './data.js';

export interface FixtureOptions {
  /** Add a FIFO and a hard link (things git cannot hold as such). */
  readonly unstorable?: boolean;
  /** Size of the large (chunked) file. */
  readonly bigBytes?: number;
}

export function makeFixtureTree(root: string, options: FixtureOptions = {}): void {
  mkdirSync(join(root, 'etc/app'), { recursive: true });
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'empty/nested-empty'), { recursive: true });
  mkdirSync(join(root, 'images'));
  writeFileSync(join(root, 'README'), 'hello gitfs\n');
  writeFileSync(join(root, 'etc/app/config.ini'), compressibleBytes(20_000, 'config'));
  writeFileSync(join(root, 'etc/app/empty-file'), '');
  writeFileSync(join(root, 'bin/tool'), '#!/bin/sh\necho tool\n');
  chmodSync(join(root, 'bin/tool'), 0o755);
  writeFileSync(join(root, 'name with spaces & ünïcödé'), 'unicode\n');
  writeFileSync(join(root, 'tricky~gitfs~c42'), 'a name that looks like gitfs metadata\n');
  writeFileSync(join(root, 'images/disk.img'), pseudoRandomBytes(options.bigBytes ?? 3 << 20, 'disk'));
  writeFileSync(join(root, 'images/tools.bin'), compressibleBytes(600_000, 'tools'));
  chmodSync(join(root, 'images/tools.bin'), 0o755);
  symlinkSync('app/config.ini', join(root, 'etc/link-relative'));
  symlinkSync('/nonexistent/target', join(root, 'etc/link-dangling'));
  symlinkSync('../bin', join(root, 'etc/link-dir'));
  if (options.unstorable === true) {
    execFileSync('mkfifo', [join(root, 'etc/a-fifo')]);
    linkSync(join(root, 'README'), join(root, 'README.hardlink'));
  }
}
