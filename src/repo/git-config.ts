/**
 * The subset of git's config-file syntax that gitfs reads and writes: `[section]`,
 * `[section "subsection"]`, `key = value`, `#`/`;` comments. Keys are returned as
 * `section.key` or `section.subsection.key` with section and key lower-cased, as git does.
 */
import { ErrorCodes, GitfsError } from '../errors.js';

export type ConfigValues = ReadonlyMap<string, string>;

const SECTION_RE = /^\[([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\\n]|\\.)*)")?\]\s*(?:[#;].*)?$/;
const ENTRY_RE = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$/;

export function parseGitConfig(text: string, source: string): Map<string, string> {
  const values = new Map<string, string>();
  let section: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const bad = (): GitfsError => new GitfsError(ErrorCodes.BAD_CONFIG, `${source}:${i + 1}: cannot parse ${JSON.stringify(line)}`);
    const s = SECTION_RE.exec(line);
    if (s !== null) {
      const name = (s[1] as string).toLowerCase();
      section = s[2] === undefined ? name : `${name}.${s[2].replace(/\\(.)/g, '$1')}`;
      return;
    }
    const e = ENTRY_RE.exec(line);
    if (e === null || section === undefined) throw bad();
    values.set(`${section}.${(e[1] as string).toLowerCase()}`, unquote(stripComment(e[2] ?? 'true')));
  });
  return values;
}

function stripComment(v: string): string {
  let inQuote = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\') i++;
    else if (c === '"') inQuote = !inQuote;
    else if (!inQuote && (c === '#' || c === ';')) return v.slice(0, i).trim();
  }
  return v.trim();
}

function unquote(v: string): string {
  return v.replace(/"/g, '').replace(/\\(["\\])/g, '$1');
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
