/**
 * Reading and writing a repository's git config. Reading goes through git's own syntax
 * (objects/git-config-syntax.ts): keys come back as `section.key` or `section.subsection.key`,
 * section and key lower-cased, as git does; a key without `=` reads as `true`.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { scanGitConfig } from '../objects/git-config-syntax.js';

export type ConfigValues = ReadonlyMap<string, string>;

export function parseGitConfig(text: string, source: string): Map<string, string> {
  const values = new Map<string, string>();
  const scan = scanGitConfig(Buffer.from(text, 'utf8'), (e) => values.set(e.name.toString('utf8'), e.value === null ? 'true' : e.value.toString('utf8')));
  if (!scan.ok) throw new GitfsError(ErrorCodes.BAD_CONFIG, `${source}:${scan.errorLine}: git's config syntax does not hold here`, { source, line: scan.errorLine });
  return values;
}

/** Renders sections in order; each is `[name]` or `[name "sub"]` with its key/value pairs. */
export function formatGitConfig(sections: ReadonlyArray<{ name: string; entries: ReadonlyArray<readonly [string, string | number | boolean]> }>): string {
  return sections
    .map((s) => {
      const dot = s.name.indexOf('.');
      const header = dot < 0 ? `[${s.name}]` : `[${s.name.slice(0, dot)} "${s.name.slice(dot + 1)}"]`;
      return [header, ...s.entries.map(([k, v]) => `\t${k} = ${String(v)}`)].join('\n');
    })
    .join('\n')
    .concat('\n');
}

/** A git boolean as git reads it (`true`, `yes`, `on`, `1`, a bare key; any other value false). */
export function gitTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', 'yes', 'on', '1'].includes(value.toLowerCase());
}
