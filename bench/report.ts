/**
 * Turns the measurements of bench/run.sh into markdown: one table per step, the ratios that
 * issue 2 sets as targets, the gitfs correctness checks and any failures.
 *
 * usage: node dist/bench/report.js RESULTS.tsv CHECKS.tsv FAILURES.md [--partial] [--load=L1 L5 L15]
 * RESULTS.tsv: step tool label status wall user sys rss_kb stored_bytes input_bytes note
 * CHECKS.tsv:  name result seconds detail
 */
import { existsSync, readFileSync } from 'node:fs';

const TOOLS = ['gitfs', 'git', 'bup', 'restic', 'borg', 'casync'] as const;
const VERSIONS = ['v01', 'v02', 'v03', 'v04', 'v05', 'v06', 'v07', 'v08', 'v09', 'v10'] as const;
const LATER = VERSIONS.slice(1);
const RSS_LIMIT_MIB = 300;

interface Row {
  step: string;
  tool: string;
  label: string;
  status: string;
  wall?: number;
  user?: number;
  sys?: number;
  rssKb?: number;
  stored?: number;
  input?: number;
  note: string;
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s === '' || s === '-') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

function readRows(path: string): Row[] {
  if (!existsSync(path)) return [];
  const rows: Row[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split('\t');
    rows.push({
      step: f[0] ?? '',
      tool: f[1] ?? '',
      label: f[2] ?? '',
      status: f[3] ?? '',
      wall: num(f[4]),
      user: num(f[5]),
      sys: num(f[6]),
      rssKb: num(f[7]),
      stored: num(f[8]),
      input: num(f[9]),
      note: f[10] ?? '',
    });
  }
  return rows;
}

const args = process.argv.slice(2);
const [resultsPath, checksPath, failuresPath] = args;
if (resultsPath === undefined || checksPath === undefined || failuresPath === undefined) {
  process.stderr.write('usage: report.js RESULTS.tsv CHECKS.tsv FAILURES.md [--partial] [--load=...]\n');
  process.exit(2);
}
const partial = args.includes('--partial');
const load = args.find((a) => a.startsWith('--load='))?.slice('--load='.length);
const rows = readRows(resultsPath);

const find = (step: string, tool: string, label: string): Row | undefined =>
  rows.find((r) => r.step === step && r.tool === tool && r.label === label);
const okRow = (r: Row | undefined): r is Row => r !== undefined && (r.status === 'ok' || r.status === 'warning');
const toolsIn = (step: string): string[] => TOOLS.filter((t) => rows.some((r) => r.step === step && r.tool === t && r.label !== 'init'));

// ---------------------------------------------------------------- formatting
const dash = '–';
const f1 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? dash : x.toFixed(1));
const f2 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? dash : x.toFixed(2));
const mb = (bytes: number | undefined): string => (bytes === undefined ? dash : (bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1));
const mib = (kb: number | undefined): string => (kb === undefined ? dash : (kb / 1024).toFixed(0));
const cpu = (r: Row | undefined): number | undefined => (r?.user === undefined || r.sys === undefined ? undefined : r.user + r.sys);
const rate = (r: Row | undefined): number | undefined =>
  r?.input === undefined || r.wall === undefined || r.wall <= 0 || !okRow(r) ? undefined : r.input / 1e6 / r.wall;
const mean = (xs: Array<number | undefined>): number | undefined => {
  const ok = xs.filter((x): x is number => x !== undefined);
  return ok.length === 0 || ok.length !== xs.length ? undefined : ok.reduce((a, b) => a + b, 0) / ok.length;
};
const toolCell = (tool: string, r: Row | undefined): string => (r === undefined || r.status === 'ok' ? tool : `${tool} (${r.status})`);
/** A markdown table; a column whose cells are all numbers (or dashes, gc times, %) is right-aligned. */
const table = (head: string[], body: string[][]): string => {
  const numeric = (c: string): boolean => /^(gc )?-?[0-9.]+%?$/.test(c) || c === dash;
  const align = head.map((_, i) => (i > 0 && body.every((b) => numeric(b[i] ?? dash)) ? '---:' : '---'));
  return [`| ${head.join(' | ')} |`, `|${align.join('|')}|`, ...body.map((b) => `| ${b.join(' | ')} |`)].join('\n');
};

/**
 * Bytes the repository grew by with this label: stored after it minus stored after the row
 * recorded just before it for the same step and tool (`init`, the previous snapshot, or for git
 * a `git gc`). `prev`, when given, names that row instead.
 */
function added(step: string, tool: string, label: string, prev?: string): number | undefined {
  const seq = rows.filter((r) => r.step === step && r.tool === tool);
  const i = seq.findIndex((r) => r.label === label);
  const b = seq[i];
  const a = prev === undefined ? (i > 0 ? seq[i - 1] : undefined) : seq.find((r) => r.label === prev);
  if (!okRow(b) || !okRow(a) || a.stored === undefined || b.stored === undefined) return undefined;
  return b.stored - a.stored;
}

const out: string[] = [];
const gitfsNotes: string[] = [];
const noteGitfs = (step: string): void => {
  for (const r of rows) if (r.step === step && r.tool === 'gitfs' && r.note !== '') gitfsNotes.push(`- ${step} ${r.label}: ${r.note}`);
};
/** One step's section: its heading, its table, and gitfs's notes for it. */
const section = (step: string, heading: string, headers: string[], body: string[][]): void => {
  out.push(`## ${heading}\n`);
  out.push(table(headers, body));
  out.push('');
  noteGitfs(step);
};

if (partial) out.push('**Partial results: the run has not finished (or stopped early).**\n');

// ---------------------------------------------------------------- 1. rootfs
if (toolsIn('rootfs').length > 0) {
  const body: string[][] = [];
  for (const t of toolsIn('rootfs')) {
    for (const label of ['a', 'b']) {
      const r = find('rootfs', t, label);
      const add = added('rootfs', t, label);
      body.push([toolCell(t, r), label, mb(r?.input), f2(r?.wall), f2(cpu(r)), mib(r?.rssKb), f1(rate(r)), mb(r?.stored), mb(add)]);
    }
    const gc = find('rootfs', t, 'gc');
    if (gc !== undefined) body.push([toolCell(t, gc), '`git gc` after b', dash, f2(gc.wall), f2(cpu(gc)), mib(gc.rssKb), dash, mb(gc.stored), dash]);
  }
  section('rootfs', '1. Root filesystem tree: rootfs/a, then rootfs/b into the same repository', ['tool', 'snapshot', 'input MB', 'wall s', 'CPU s', 'peak RSS MiB', 'MB/s', 'stored after, MB', 'added, MB'], body);
}

// ---------------------------------------------------------------- 2. random
if (toolsIn('random').length > 0) {
  const body: string[][] = [];
  for (const t of toolsIn('random')) {
    const r = find('random', t, 'random');
    const st = added('random', t, 'random');
    body.push([toolCell(t, r), f2(r?.wall), f2(cpu(r)), mib(r?.rssKb), f1(rate(r)), mb(r?.stored), r?.input && st !== undefined ? f2(st / r.input) : dash]);
  }
  section('random', '2. 1 GiB of random data (random/random.bin)', ['tool', 'wall s', 'CPU s', 'peak RSS MiB', 'MB/s', 'stored MB', 'added / input'], body);
}

// ---------------------------------------------------------------- 3. images
if (toolsIn('images').length > 0) {
  const body: string[][] = [];
  for (const t of toolsIn('images')) {
    const addA = added('images', t, 'a');
    for (const label of ['a', 'b']) {
      const r = find('images', t, label);
      const add = added('images', t, label);
      const pct = label === 'b' && add !== undefined && addA !== undefined && addA > 0 ? `${((100 * add) / addA).toFixed(0)}%` : dash;
      body.push([toolCell(t, r), label, f2(r?.wall), f2(cpu(r)), mib(r?.rssKb), f1(rate(r)), mb(r?.stored), mb(add), pct]);
    }
    const gc = find('images', t, 'gc');
    if (gc !== undefined) body.push([toolCell(t, gc), '`git gc` after b', f2(gc.wall), f2(cpu(gc)), mib(gc.rssKb), dash, mb(gc.stored), dash, dash]);
  }
  section('images', '3. Disk images: images/a.raw, then images/b.raw (1.5 GiB sparse ext4, same path) into one repository', ['tool', 'image', 'wall s', 'CPU s', 'peak RSS MiB', 'MB/s (apparent)', 'stored after, MB', 'added, MB', 'b added, % of a'], body);
}

// ---------------------------------------------------------------- 4. versions
if (toolsIn('versions').length > 0) {
  const body: string[][] = [];
  const detail: string[][] = [];
  for (const t of toolsIn('versions')) {
    const first = find('versions', t, 'v01');
    const later = LATER.map((v) => find('versions', t, v));
    const adds = LATER.map((v) => added('versions', t, v));
    const allOk = later.every(okRow) && okRow(first);
    const worst = [first, ...later].find((r) => r !== undefined && r.status !== 'ok');
    const rss = Math.max(...[first, ...later].map((r) => r?.rssKb ?? 0));
    body.push([
      toolCell(t, worst),
      f2(first?.wall),
      f1(rate(first)),
      mb(added('versions', t, 'v01')),
      allOk ? f2(mean(later.map((r) => r?.wall))) : dash,
      allOk ? f2(mean(later.map(cpu))) : dash,
      allOk ? f1(mean(later.map(rate))) : dash,
      mib(rss > 0 ? rss : undefined),
      allOk ? mb(mean(adds)) : dash,
      mb(find('versions', t, 'v10')?.stored),
    ]);
    detail.push([t, ...adds.map(mb)]);
    if (t === 'git') {
      const g1 = find('versions', 'git', 'gc-after-v01');
      const g10 = find('versions', 'git', 'gc-after-v10');
      const perVersion = okRow(g1) && okRow(g10) && g1.stored !== undefined && g10.stored !== undefined ? (g10.stored - g1.stored) / LATER.length : undefined;
      const base = find('versions', 'git', 'init')?.stored;
      body.push([
        `git, after \`git gc\``,
        `gc ${f2(g1?.wall)}`,
        dash,
        g1?.stored !== undefined && base !== undefined ? mb(g1.stored - base) : dash,
        `gc ${f2(g10?.wall)}`,
        `gc ${f2(cpu(g10))}`,
        dash,
        mib(Math.max(g1?.rssKb ?? 0, g10?.rssKb ?? 0) || undefined),
        mb(perVersion),
        mb(g10?.stored),
      ]);
    }
  }
  out.push('## 4. Ten versions of a /usr tree: versions/v01..v10 into one repository\n');
  out.push(
    table(
      ['tool', 'v01 wall s', 'v01 MB/s', 'v01 stored, MB', 'v02–v10 mean wall s', 'mean CPU s', 'mean MB/s', 'peak RSS MiB', 'added per later version, MB (mean)', 'stored after v10, MB'],
      body,
    ),
  );
  out.push('');
  out.push('Bytes added by each later version, MB (git: loose objects, before gc):\n');
  out.push(table(['tool', ...LATER], detail));
  out.push('');
  noteGitfs('versions');
}

// ---------------------------------------------------------------- ratios
const ratios: string[][] = [];
const ratioRow = (what: string, num: number | undefined, den: number | undefined, target: string, pass: (x: number) => boolean, how: string): void => {
  if (num === undefined || den === undefined || den === 0) {
    ratios.push([what, dash, target, 'n/a', how]);
    return;
  }
  const x = num / den;
  ratios.push([what, x.toFixed(2), target, pass(x) ? 'PASS' : '**FAIL**', how]);
};
const wall = (step: string, tool: string, label: string): number | undefined => {
  const r = find(step, tool, label);
  return okRow(r) ? r.wall : undefined;
};
if (toolsIn('rootfs').length > 0) {
  ratioRow('rootfs a: gitfs wall / git wall', wall('rootfs', 'gitfs', 'a'), wall('rootfs', 'git', 'a'), '≤ 1.5', (x) => x <= 1.5, `${f2(wall('rootfs', 'gitfs', 'a'))} s / ${f2(wall('rootfs', 'git', 'a'))} s`);
  ratioRow('rootfs b: gitfs wall / git wall', wall('rootfs', 'gitfs', 'b'), wall('rootfs', 'git', 'b'), '≤ 1.5', (x) => x <= 1.5, `${f2(wall('rootfs', 'gitfs', 'b'))} s / ${f2(wall('rootfs', 'git', 'b'))} s`);
}
if (toolsIn('random').length > 0) {
  const r = (t: string): number | undefined => rate(find('random', t, 'random'));
  ratioRow('random: gitfs MB/s / git MB/s', r('gitfs'), r('git'), '≥ 4', (x) => x >= 4, `${f1(r('gitfs'))} / ${f1(r('git'))} MB/s`);
  ratioRow('random: gitfs MB/s / borg MB/s', r('gitfs'), r('borg'), '≥ 1', (x) => x >= 1, `${f1(r('gitfs'))} / ${f1(r('borg'))} MB/s`);
}
if (toolsIn('images').length > 0) {
  const g = added('images', 'gitfs', 'b');
  const b = added('images', 'bup', 'b');
  ratioRow('images: bytes added by b, gitfs / bup', g, b, '≤ 1', (x) => x <= 1, `${mb(g)} MB / ${mb(b)} MB`);
  for (const label of ['a', 'b']) {
    ratioRow(`images ${label}: gitfs wall / bup wall`, wall('images', 'gitfs', label), wall('images', 'bup', label), '< 1', (x) => x < 1, `${f2(wall('images', 'gitfs', label))} s / ${f2(wall('images', 'bup', label))} s`);
  }
}
if (toolsIn('versions').length > 0) {
  const per = (t: string): number | undefined => mean(LATER.map((v) => added('versions', t, v)));
  ratioRow('versions: bytes per later version, gitfs / git loose (before gc)', per('gitfs'), per('git'), '≤ 1', (x) => x <= 1, `${mb(per('gitfs'))} MB / ${mb(per('git'))} MB`);
}
const gitfsRuns = rows.filter((r) => r.tool === 'gitfs' && r.label !== 'init');
if (gitfsRuns.length > 0) {
  const peak = gitfsRuns.reduce((m, r) => Math.max(m, r.rssKb ?? 0), 0);
  const at = gitfsRuns.find((r) => r.rssKb === peak);
  ratios.push([
    'gitfs peak RSS over all runs, MiB',
    mib(peak),
    `< ${RSS_LIMIT_MIB}`,
    peak / 1024 < RSS_LIMIT_MIB ? 'PASS' : '**FAIL**',
    at ? `at ${at.step} ${at.label}` : '',
  ]);
  const failed = gitfsRuns.filter((r) => r.status !== 'ok' && r.status !== 'warning');
  ratios.push(['gitfs runs that failed', String(failed.length), '0', failed.length === 0 ? 'PASS' : '**FAIL**', failed.map((r) => `${r.step} ${r.label}: ${r.status}`).join(', ')]);
}
if (ratios.length > 0) {
  out.push('## Targets (issue 2), as ratios in this run\n');
  out.push(table(['ratio', 'value', 'target', 'result', 'from'], ratios));
  out.push('');
}

// ---------------------------------------------------------------- checks, notes, failures
const checks = existsSync(checksPath)
  ? readFileSync(checksPath, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split('\t'))
  : [];
if (checks.length > 0) {
  out.push('## gitfs correctness checks (outside the timings)\n');
  out.push(table(['check', 'result', 'seconds', 'detail'], checks.map((c) => [c[0] ?? '', c[1] === 'PASS' ? 'PASS' : `**${c[1] ?? '?'}**`, c[2] ?? '', (c[3] ?? '').replace(/\|/g, '\\|')])));
  out.push('');
}
if (gitfsNotes.length > 0) {
  out.push('## gitfs commit reports\n');
  out.push(...gitfsNotes);
  out.push('');
}
const failures = existsSync(failuresPath) ? readFileSync(failuresPath, 'utf8').trim() : '';
if (failures !== '') {
  out.push('## Failures, warnings and timeouts (last lines of stderr)\n');
  out.push(failures);
  out.push('');
}
if (load !== undefined) out.push(`Load average at the end: ${load}.\n`);
process.stdout.write(`${out.join('\n')}\n`);
