/**
 * gitfs's verdict on `.gitmodules` and `.gitattributes` (storable-name.ts, special-file-check.ts)
 * against the real `git fsck --strict`, case by case: hand-picked cases from git's own checks,
 * then `.gitmodules` made at random from pieces git's parser treats specially. Every case is a
 * tree built by git itself in one repository, and one fsck says which of them git refuses.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { specialFileProblem } from '../../src/objects/special-file-check.js';
import { parseGitConfig } from '../../src/repo/git-config.js';
import { specialFileOf, unstorableName } from '../../src/objects/storable-name.js';
import { pseudoRandomBytes } from '../support/data.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

interface Case {
  /** The entry's name in its tree. Cases sharing a blob's content must share its verdict (git reports a blob once). */
  readonly name: string;
  readonly mode: '100644' | '040000' | '120000';
  /** A blob's content (or a link's target); a directory holds it as its one file. */
  readonly content: Buffer;
}

/** Whether this machine's git reads a blob through a signed `char` (x86) or an unsigned one (arm64 and others). */
const SIGNED_CHAR = process.arch === 'x64' || process.arch === 'ia32';

/** What gitfs says of one case, for a git like this machine's: refused or not. */
function gitfsRefuses(c: Case): boolean {
  if (c.mode === '040000') return unstorableName(c.name, 'dir') !== undefined;
  if (c.mode === '120000') return unstorableName(c.name, 'symlink') !== undefined;
  const special = specialFileOf(c.name);
  return unstorableName(c.name, 'file') !== undefined || (special !== undefined && specialFileProblem(special, c.content, SIGNED_CHAR) !== undefined);
}

/** Which cases `git fsck --strict` reports an error for (warnings do not count: they pass). */
function gitRefuses(cases: readonly Case[]): boolean[] {
  const dir = tempDir('special-files');
  const repo = join(dir, 'repo.git');
  const run = (args: string[], input?: string): string =>
    execFileSync('git', [`--git-dir=${repo}`, ...args], { encoding: 'utf8', input, maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
  execFileSync('git', ['init', '-q', '--bare', repo]);
  const files = cases.map((c, i) => {
    const f = join(dir, `content-${i}`);
    writeFileSync(f, c.content);
    return f;
  });
  const blobs = run(['hash-object', '-w', '--', ...files]).trim().split('\n');
  const batch = (lines: string[]): string[] => run(['mktree', '--batch'], lines.join('\n')).trim().split('\n');
  // A directory holds its case's blob as `x`: git reports a directory it reads as .gitmodules by that inner tree.
  const inner = batch(cases.map((_, i) => `100644 blob ${blobs[i]}\tx\n`));
  const trees = batch(cases.map((c, i) => (c.mode === '040000' ? `040000 tree ${inner[i]}\t${c.name}\n` : `${c.mode} blob ${blobs[i]}\t${c.name}\n`)));
  let report = '';
  try {
    run(['fsck', '--strict', '--no-dangling']);
  } catch (e) {
    report = String((e as { stderr: unknown }).stderr);
  }
  const refused = new Set([...report.matchAll(/^error in (?:blob|tree) ([0-9a-f]{40})/gm)].map((m) => m[1]));
  return cases.map((c, i) => (c.mode === '100644' && refused.has(blobs[i])) || (c.mode === '040000' && refused.has(inner[i])) || refused.has(trees[i]));
}

function compare(cases: readonly Case[]): void {
  const git = gitRefuses(cases);
  const wrong = cases.flatMap((c, i) => (gitfsRefuses(c) === git[i] ? [] : [`${c.mode} ${JSON.stringify(c.name)} ${JSON.stringify(c.content.toString('latin1'))}: git ${git[i] ? 'refuses' : 'accepts'}`]));
  assert.deepEqual(wrong, [], `gitfs disagrees with git fsck --strict on ${wrong.length} of ${cases.length}`);
  assert.ok(git.some(Boolean) && !git.every(Boolean), 'the cases have both verdicts');
}

const modules = (text: string): Case => ({ name: '.gitmodules', mode: '100644', content: Buffer.from(text, 'latin1') });
const attributes = (text: string): Case => ({ name: '.gitattributes', mode: '100644', content: Buffer.from(text, 'latin1') });

describe('.gitmodules and .gitattributes as git fsck --strict judges them', () => {
  after(cleanupTempDirs);

  it('names git reads as them, by kind of entry (NTFS short names, HFS+ invisible code points)', () => {
    const names = ['.gitmodules', '.GITMODULES', '.gitmodules .', '.gitmodules:stream', '.gitmodulesx', 'gitmodules', 'gitmod~1', 'GITMOD~4', 'gitmod~5', 'gi7eba~9',
      'gi7eb~12', '~1234567', '~123456', 'g~1', 'gx~1', '.gitattributes', '.GitAttributes..', 'gitatt~1', 'gi7d29~1', 'gi7d2~99', '.git\u200cattributes', '.gitm\u200dodules',
      '\u212agitmodules', '.gitignore', '.mailmap', 'gitat~12', 'a~1', '.git\uffff', '.GIT\ufffe', '.gitmodules\ufffex', '.gitattributes\uffff', '.git\\foo', 'git~1\\foo',
      '.gitmodules\\x', '.gitmodules:x~gitfs~c300000', '.git:a\\b', 'x\ufffe.gitmodules'];
    const cases: Case[] = [];
    // Each file its own content: git reports a refused .gitmodules by its blob, which no other case may share.
    names.forEach((name, i) => {
      cases.push({ name, mode: '040000', content: Buffer.from(`x${i}`) }, { name, mode: '120000', content: Buffer.from('target') }, { name, mode: '100644', content: Buffer.from(`[submodule "a"]\n\turl = -x${i}\n`) });
    });
    compare(cases);
  });

  it('.gitmodules: names, urls, paths and update settings git refuses, and what it lets through', () => {
    compare([
      modules('[submodule "a"]\n\turl = https://example.org/a.git\n\tpath = a\n\tupdate = rebase\n'),
      modules('[submodule "a"]\n\turl = -x\n'),
      modules('[submodule "a"]\n\turl = "-x"\n'),
      modules('[submodule "a"]\n\tpath = -x\n'),
      modules('[submodule "a"]\n\tupdate = !rm -rf /\n'),
      modules('[submodule "a"]\n\tupdate = none\n'),
      modules('[submodule "../a"]\n\tpath = a\n'),
      modules('[submodule "a/../b"]\n\tpath = a\n'),
      modules('[submodule "a\\\\..\\\\b"]\n\tpath = a\n'),
      modules('[submodule "..."]\n\tpath = a\n'),
      modules('[submodule ""]\n\tpath = a\n'),
      modules('[submodule...]\n\tpath = a\n'),
      modules('[submodule....]\n\tpath = a\n'),
      modules('[submodule "a\0.."]\n\turl = -x\n'),
      modules('[submodule "a"]\n\turl = ./x%0a\n'),
      modules('[submodule "a"]\n\turl = ./x%00%0a\n'),
      modules('[submodule "a"]\n\turl = git://h/%0a\n'),
      modules('[submodule "a"]\n\turl = ../../:x\n'),
      modules('[submodule "a"]\n\turl = ../x:y\n'),
      modules('[submodule "a"]\n\turl = ..\\\\:y\n'),
      modules('[submodule "a"]\n\turl = ./../..//x\n'),
      modules('[submodule "a"]\n\turl = http:///p\n'),
      modules('[submodule "a"]\n\turl = https://u%0a:p@h/\n'),
      modules('[submodule "a"]\n\turl = https://u:p%0a@h/\n'),
      modules('[submodule "a"]\n\turl = https://u:a%0a:b@h/\n'),
      modules('[submodule "a"]\n\turl = https://h/a%0a:b\n'),
      modules('[submodule "a"]\n\turl = https://h?%0a\n'),
      modules('[submodule "a"]\n\turl = https://h%00/\n'),
      modules('[submodule "a"]\n\turl = https://h:%0a/\n'),
      modules('[submodule "a"]\n\turl = http::./%0a\n'),
      modules('[submodule "a"]\n\turl = https::ht\\ntp://h\n'),
      modules('[submodule "a"]\n\turl = ftp://@/\n'),
      modules('[submodule "a"]\n\turl = ssh://h/%0a\n'),
      modules('\xef\xbb\xbf[submodule "a"]\n\turl = -x\n'),
      modules('[submodule "a"]\n\turl = ok\n\xff[submodule "b"]\n\turl = -y\n'),
      modules('[submodule "a"]\r\n\turl = -x\r\n'),
      modules('[submodule "a"]\n\turl = x \\\n-y\n'),
      modules('[submodule "a"]\n\turl = x ; -y\n\tpath = "a ; b" # c\n'),
      modules('[submodule "a"]\n\turl = \\q-x\n'),
      modules('[submodule "a"]\n\turl\n\tpath\n'),
      modules('url = -x\n'),
      modules('[core]\n\turl = -x\n'),
      modules('[submodule "a" ]\n\turl = -x\n'),
      modules('[submodule\n"a"]\n\turl = -x\n'),
      modules('garbage\n[submodule "a"]\n\turl = -x\n'),
      modules('%%%\n[submodule "a"]\n\turl = -x\n'),
      modules('[Submodule "A"]\n\tURL = -x\n'),
      modules('[submodule.A]\n\tpath = -x\n'),
      modules('[submodule "a.b"]\n\turl = -x'),
      attributes('* text=auto\n*.bin binary\n'),
      attributes(`${'a'.repeat(2047)}\n`),
      attributes(`${'a'.repeat(2048)}\n`),
      attributes(`${'a'.repeat(2047)}\r\n`),
      attributes(`x\n${'a'.repeat(3000)}`),
      attributes(`x\0${'a'.repeat(3000)}\n`),
    ]);
  });

  it('refuses what a git of either kind of `char` refuses: a byte order mark is skipped where `char` is unsigned', () => {
    const bom = Buffer.from('\xef\xbb\xbf[submodule "a"]\n\turl = -x\n', 'latin1');
    assert.equal(specialFileProblem('gitmodules', bom, true), undefined, 'x86 git cannot parse it, and only notes that');
    assert.equal(specialFileProblem('gitmodules', bom, false), 'disallowed submodule url: -x');
    assert.equal(specialFileProblem('gitmodules', bom), 'disallowed submodule url: -x');
    const ff = Buffer.from('[submodule "a"]\n\turl = ok\xff\n[submodule "b"]\n\turl = -y\n', 'latin1');
    assert.equal(specialFileProblem('gitmodules', ff, true), undefined, 'x86 git stops at 0xFF');
    assert.equal(specialFileProblem('gitmodules', ff), 'disallowed submodule url: -y');
  });

  it('.gitmodules made at random from what git parses specially (400 files)', () => {
    const noise = pseudoRandomBytes(64 * 1024, 'gitmodules differential');
    let at = 0;
    const pick = <T>(xs: readonly T[]): T => xs[(noise[at++ % noise.length] as number) % xs.length] as T;
    const names = ['a', '..', 'a/..', '../b', '..\\b', '', '.', 'a b', 'a"b', 'a\\"..', '..\0'];
    const headers = [(n: string) => `[submodule "${n.replace(/["\\]/g, '\\$&')}"]`, (n: string) => `[submodule "${n}"]`, (n: string) => `[submodule.${n}]`, () => '[core]', (n: string) => `[SubModule  "${n}"]`, () => '[submodule]'];
    const keys = ['url', 'path', 'update', 'URL', 'Path', 'branch', 'url2', 'u-rl'];
    const seps = [' = ', '=', ' =', '\t=\t', ''];
    const values = ['-x', '"-x"', ' -x', 'x', './x%0a', './%00%0a', '../:x', '../../x', '..\\..\\/x', 'git://h%0a', 'git://h', 'https://h/', 'https:///',
      'http::https://x', 'https://u%0a@h', 'https://u:p@h/%0A', 'https://h#%0a', 'ftps://%0a', '!cmd', 'none', 'x ; -y', '"a"-b', 'a\\nb', 'a\\tb', '\\', '"open', '\\x', '"a\\"b"'];
    const junk = ['', '# comment', '; comment', '\t', 'key', '[', '\xff', '\xef\xbb\xbf', '\r', 'x = \\', '[a "b"] c = d'];
    const eols = ['\n', '\r\n', '\n\n'];
    const cases: Case[] = [];
    for (let i = 0; i < 400; i++) {
      const lines: string[] = [];
      const count = 1 + ((noise[at++ % noise.length] as number) % 5);
      for (let j = 0; j < count; j++) {
        lines.push(pick(headers)(pick(names)));
        const entries = 1 + ((noise[at++ % noise.length] as number) % 3);
        for (let k = 0; k < entries; k++) lines.push(`${pick(['\t', '', '  '])}${pick(keys)}${pick(seps)}${pick(values)}`);
        if ((noise[at++ % noise.length] as number) < 40) lines.push(pick(junk));
      }
      const eol = pick(eols);
      cases.push(modules(lines.join(eol) + ((noise[at++ % noise.length] as number) < 128 ? eol : '')));
    }
    compare(cases);
  });

  it("reads a repository config as git config does: a byte order mark at the start skipped, a partial one refused, a key before any section kept", () => {
    const dir = tempDir('config-syntax');
    for (const [i, text] of ['\xef\xbb\xbf[core]\n\tbare = true\n', '\xef\xbb[core]\n\tbare = true\n', 'top = 1\n[a "b"] c = d\n', '[x]\n\ty = "a\\tb" ; c\n'].entries()) {
      const file = join(dir, `config-${i}`);
      writeFileSync(file, Buffer.from(text, 'latin1'));
      let git: string | undefined;
      try {
        git = execFileSync('git', ['config', '-f', file, '-l'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch {
        git = undefined;
      }
      let ours: string | undefined;
      try {
        ours = [...parseGitConfig(readFileSync(file, 'utf8'), file)].map(([k, v]) => `${k}=${v}\n`).join('');
      } catch (e) {
        assert.ok(isGitfsError(e, ErrorCodes.BAD_CONFIG), String(e));
        ours = undefined;
      }
      assert.equal(ours, git, JSON.stringify(text));
    }
  });
});
