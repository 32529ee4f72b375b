/** Temporary directories that the calling suite removes in its `after` hook, pass or fail. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDirs(): { make(prefix?: string): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make(prefix = 'gitfs-test-') {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    cleanup() {
      for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

const shared = tempDirs();

/** A directory `gitfs-<label>-XXXXXX` in one module-wide set; suites call cleanupTempDirs() from an `after` hook. */
export function tempDir(label: string): string {
  return shared.make(`gitfs-${label}-`);
}

/** Removes every directory tempDir() made. */
export function cleanupTempDirs(): void {
  shared.cleanup();
}
