/**
 * Whether packs may be removed from a repository at all. Not where git keeps a multi-pack-index
 * (it names packs by position, and would name removed ones) or `extensions.preciousObjects` is
 * set (nothing may be removed). Pack merges, prunes and repairs all ask first.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gitTrue, parseGitConfig } from './git-config.js';

export interface PacksStay {
  readonly reason: 'precious' | 'multi-pack-index';
  readonly message: string;
}

/** Why no pack may be removed from the repository at `gitDir`, or undefined. */
export async function whyPacksStay(gitDir: string): Promise<PacksStay | undefined> {
  const configPath = join(gitDir, 'config');
  if (gitTrue(parseGitConfig(await readFile(configPath, 'utf8'), configPath).get('extensions.preciousobjects'))) {
    return { reason: 'precious', message: 'extensions.preciousObjects is set: no object may be removed here' };
  }
  const packFiles = await readdir(join(gitDir, 'objects', 'pack')).catch(() => [] as string[]);
  if (packFiles.includes('multi-pack-index') || packFiles.includes('multi-pack-index.d')) {
    return { reason: 'multi-pack-index', message: 'git keeps a multi-pack-index here, which names packs by position and would name removed ones: remove objects/pack/multi-pack-index* (git writes it again)' };
  }
  return undefined;
}
