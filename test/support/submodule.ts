/** A gitfs repository into which git pushed a submodule (a gitlink), as a clone of it would. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from './cli.js';
import { gitText } from './git-env.js';

/**
 * A gitfs repository whose `main` git moved: a clone changed `a.txt` and added the submodule
 * `lib` (a commit of another repository, absent here), then pushed. Returns the submodule's commit.
 */
export async function pushSubmodule(base: string, repo: string): Promise<string> {
  const src = join(base, 'src');
  mkdirSync(join(src, 'docs'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'a\n');
  writeFileSync(join(src, 'docs/readme'), 'readme\n');
  await gitfsOk(['init', '--repo', repo]);
  await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'base']);
  const other = join(base, 'other');
  gitText(['init', '-q', '-b', 'main', other]);
  writeFileSync(join(other, 'lib.c'), 'int lib;\n');
  gitText(['add', 'lib.c'], { cwd: other });
  gitText(['commit', '-q', '-m', 'lib'], { cwd: other });
  const clone = join(base, 'clone');
  gitText(['clone', '-q', repo, clone]);
  gitText(['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', other, 'lib'], { cwd: clone });
  writeFileSync(join(clone, 'a.txt'), 'A\n');
  gitText(['commit', '-q', '-a', '-m', 'add the submodule lib'], { cwd: clone });
  gitText(['push', '-q', 'origin', 'main'], { cwd: clone });
  return gitText(['rev-parse', 'HEAD'], { cwd: other });
}
