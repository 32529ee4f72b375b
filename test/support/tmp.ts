/** Temporary directories that the calling suite removes in its `after` hook, pass or fail. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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

export interface SuiteDirs {
  make(prefix?: string): string;
  /** A fresh directory with paths for a repository, a source directory (made) and a mount point in it. */
  place(): { base: string; repo: string; src: string; mnt: string };
}

/**
 * Temporary directories for the suite that calls this inside its `describe`: its `after` hook
 * runs `first` (unmounting, say), then removes them, pass or fail.
 */
export function suiteDirs(first?: () => Promise<void>): SuiteDirs {
  const tmp = tempDirs();
  after(async () => {
    try {
      await first?.();
    } finally {
      tmp.cleanup();
    }
  });
  return {
    make: (prefix?: string) => tmp.make(prefix),
    place: () => {
      const base = tmp.make();
      const src = join(base, 'src');
      mkdirSync(src);
      return { base, repo: join(base, 'repo'), src, mnt: join(base, 'mnt') };
    },
  };
}
