/**
 * What a gitfs repository records about itself in its git config at `init`, and never changes:
 * the format version and the chunking parameters (changing them would break dedup with every
 * object already stored). See docs/FORMAT.md, "Repository config".
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { GEAR_ALGORITHM, validateChunkerParams, type ChunkerParams } from '../objects/chunker.js';
import type { ChunkTreeParams } from '../objects/chunk-tree.js';
import type { ConfigValues } from './git-config.js';
import { formatGitConfig } from './git-config.js';

export const FORMAT_VERSION = 1;

export interface RepoFormat {
  readonly formatVersion: number;
  readonly chunker: ChunkerParams;
  readonly tree: ChunkTreeParams;
  /** Regular files larger than this many bytes are chunked; smaller ones are single blobs. */
  readonly chunkThreshold: number;
}

/** Settings that may change at any time without affecting object ids. */
export interface RepoSettings {
  readonly compressionLevel: number;
}

/** Chunk bounds around an average: a quarter of it at least, eight times at most (the defaults: 2 / 8 / 64 KiB). */
function chunkerAround(avgSize: number): ChunkerParams {
  return { minSize: avgSize / 4, avgSize, maxSize: avgSize * 8 };
}

export const DEFAULT_FORMAT: RepoFormat = {
  formatVersion: FORMAT_VERSION,
  chunker: chunkerAround(8192),
  tree: { fanoutBits: 4, maxFanout: 256 },
  chunkThreshold: 256 * 1024,
};

export const DEFAULT_SETTINGS: RepoSettings = { compressionLevel: 1 };

/** The average chunk sizes `gitfs init --chunk-size` takes (powers of two). */
export const CHUNK_SIZE_RANGE = { least: 4 << 10, most: 256 << 10 } as const;

/**
 * The default format with another average chunk size, bounded as the default is. Bigger chunks mean fewer objects (less work per byte moved,
 * stored or read) and coarser dedup: BENCHMARKS.md, "Chunk parameters".
 */
export function formatWithChunkSize(avgSize: number): RepoFormat {
  const { least, most } = CHUNK_SIZE_RANGE;
  if (!Number.isInteger(avgSize) || avgSize < least || avgSize > most || (avgSize & (avgSize - 1)) !== 0) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `the chunk size must be a power of two from ${least} to ${most} bytes, not ${avgSize}`);
  }
  return { ...DEFAULT_FORMAT, chunker: chunkerAround(avgSize) };
}

export function renderConfig(format: RepoFormat, settings: RepoSettings): string {
  return formatGitConfig([
    {
      name: 'core',
      entries: [
        ['repositoryformatversion', 0],
        ['filemode', true],
        ['bare', true],
        ['logallrefupdates', true],
      ],
    },
    { name: 'gitfs', entries: [['formatVersion', format.formatVersion]] },
    {
      name: 'gitfs.chunking',
      entries: [
        ['algorithm', GEAR_ALGORITHM],
        ['minSize', format.chunker.minSize],
        ['avgSize', format.chunker.avgSize],
        ['maxSize', format.chunker.maxSize],
        ['fanoutBits', format.tree.fanoutBits],
        ['maxFanout', format.tree.maxFanout],
        ['threshold', format.chunkThreshold],
      ],
    },
    { name: 'gitfs.pack', entries: [['compression', settings.compressionLevel]] },
  ]);
}

/** The `extensions.*` of a version 1 git repository that change nothing gitfs reads or writes. */
const HARMLESS_EXTENSIONS: ReadonlySet<string> = new Set(['extensions.partialclone', 'extensions.noop', 'extensions.preciousobjects', 'extensions.worktreeconfig']);

/**
 * Refuses what git itself would refuse, or read differently: a git repository format above 1, or
 * an extension gitfs does not know (another object format, reftable refs): gitfs would read and
 * write it as a plain SHA-1, files-refs repository.
 */
function checkGitFormat(values: ConfigValues, source: string): void {
  const version = values.get('core.repositoryformatversion') ?? '0';
  if (version !== '0' && version !== '1') {
    throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${source}: git repository format version ${version} is not supported (0 and 1 are)`);
  }
  for (const [key, value] of values) {
    if (!key.startsWith('extensions.') || HARMLESS_EXTENSIONS.has(key)) continue;
    const plain = (key === 'extensions.objectformat' && value.toLowerCase() === 'sha1') || (key === 'extensions.refstorage' && value.toLowerCase() === 'files');
    // Version 0 repositories: git ignores extensions, but these two would still mean another layout.
    if (plain || (version === '0' && key !== 'extensions.objectformat' && key !== 'extensions.refstorage')) continue;
    throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${source}: git extension ${key.slice('extensions.'.length)} = ${value} is not supported (gitfs reads and writes SHA-1 objects and files refs only)`);
  }
}

export function readFormat(values: ConfigValues, source: string): { format: RepoFormat; settings: RepoSettings } {
  checkGitFormat(values, source);
  const version = values.get('gitfs.formatversion');
  if (version === undefined) {
    throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${source} has no gitfs.formatVersion: a git repository gitfs did not make (gitfs works on repositories gitfs init made; gitfs commit --from imports a checkout of this one into such a repository)`);
  }
  if (version !== String(FORMAT_VERSION)) {
    throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${source}: gitfs format version ${version} is not supported by this build (${FORMAT_VERSION})`);
  }
  const int = (key: string, min: number, max: number): number => {
    const raw = values.get(key);
    const n = raw === undefined ? NaN : Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new GitfsError(ErrorCodes.BAD_CONFIG, `${source}: ${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const algorithm = values.get('gitfs.chunking.algorithm');
  if (algorithm !== GEAR_ALGORITHM) {
    throw new GitfsError(ErrorCodes.BAD_CONFIG, `${source}: unknown chunking algorithm ${JSON.stringify(algorithm)}`);
  }
  const chunker = {
    minSize: int('gitfs.chunking.minsize', 64, 1 << 26),
    avgSize: int('gitfs.chunking.avgsize', 256, 1 << 24),
    maxSize: int('gitfs.chunking.maxsize', 512, 1 << 26),
  };
  validateChunkerParams(chunker);
  const format: RepoFormat = {
    formatVersion: FORMAT_VERSION,
    chunker,
    tree: { fanoutBits: int('gitfs.chunking.fanoutbits', 1, 8), maxFanout: int('gitfs.chunking.maxfanout', 2, 65536) },
    chunkThreshold: int('gitfs.chunking.threshold', 0, Number.MAX_SAFE_INTEGER),
  };
  const compression = values.get('gitfs.pack.compression');
  const settings: RepoSettings = {
    compressionLevel: compression === undefined ? DEFAULT_SETTINGS.compressionLevel : int('gitfs.pack.compression', 0, 9),
  };
  return { format, settings };
}

/**
 * What of a format decides the ids of a large file's objects, as one line: two repositories
 * store the same file as the same objects only if theirs are equal (docs/FORMAT.md).
 */
export function chunkingLine(format: RepoFormat): string {
  const { chunker, tree, chunkThreshold } = format;
  return `${GEAR_ALGORITHM} min ${chunker.minSize} avg ${chunker.avgSize} max ${chunker.maxSize} fanout ${tree.fanoutBits}/${tree.maxFanout} above ${chunkThreshold}`;
}
