import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitfs, gitfsOk } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';

describe('gitfs branch, HEAD and history listings', function () {
  const tmp = suiteDirs();

  it('creates, lists and deletes branches; HEAD follows the first branch; git agrees', async () => {
    const { repo, src } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    assert.equal((await gitfs(['log', '--repo', repo])).code, 4);
    writeFileSync(join(src, 'a'), '1\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'kernel/stable', '--from', src, '-m', 'one']);
    assert.equal(git(repo, ['symbolic-ref', 'HEAD']).trim(), 'refs/heads/kernel/stable');
    writeFileSync(join(src, 'a'), '2\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'kernel/stable', '--from', src, '-m', 'two']);
    const unchanged = await gitfsOk(['commit', '--repo', repo, '--branch', 'kernel/stable', '--from', src, '-m', 'same']);
    assert.match(unchanged, /nothing to commit/);
    await gitfsOk(['branch', '--repo', repo, 'create', 'kernel/previous', 'kernel/stable~1']);
    await gitfsOk(['branch', '--repo', repo, 'create', 'copy']);
    assert.equal(git(repo, ['rev-parse', 'kernel/previous']).trim(), git(repo, ['rev-parse', 'kernel/stable~1']).trim());
    assert.equal(git(repo, ['rev-parse', 'copy']).trim(), git(repo, ['rev-parse', 'kernel/stable']).trim());
    const list = await gitfsOk(['branch', '--repo', repo]);
    assert.match(list, /^  [0-9a-f]{12} copy\n  [0-9a-f]{12} kernel\/previous\n\* [0-9a-f]{12} kernel\/stable\n$/);
    assert.equal((await gitfs(['branch', '--repo', repo, 'create', 'kernel'])).code, 5);
    assert.equal((await gitfsOk(['log', '--repo', repo, '--oneline', '-n', '1'])).trim().split('\n').length, 1);
    assert.match(await gitfsOk(['log', '--repo', repo, '--first-parent', 'kernel/stable']), /two[\s\S]*one/);
    const rows = (await gitfsOk(['ls', '--repo', repo, '--json', 'kernel/previous'])).trim().split('\n').map((l) => JSON.parse(l) as { path: string; size: number });
    assert.deepEqual(rows.map((r) => [r.path, r.size]), [['a', 2]]);
    execFileSync('git', [`--git-dir=${repo}`, 'pack-refs', '--all']);
    await gitfsOk(['branch', '--repo', repo, 'delete', 'kernel/previous']);
    assert.doesNotMatch(git(repo, ['show-ref']), /kernel\/previous/);
    assert.equal((await gitfs(['cat', '--repo', repo, 'kernel/previous:a'])).code, 4);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });

  it('names with @ (not @{) are branches in revisions too, as in git', async () => {
    const { repo, src } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    for (const n of ['1', '2']) {
      writeFileSync(join(src, 'a'), `${n}\n`);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'rel@2026', '--from', src, '-m', n]);
    }
    await gitfsOk(['branch', '--repo', repo, 'create', 'a@b', 'rel@2026~1']);
    for (const rev of ['rel@2026', 'rel@2026~1', 'rel@2026^', 'rel@2026@{1}', 'a@b', 'a@b@{0}']) {
      const id = /^commit ([0-9a-f]{40})$/m.exec(await gitfsOk(['log', '--repo', repo, '-n', '1', rev]))?.[1];
      assert.equal(id, git(repo, ['rev-parse', rev]).trim(), rev);
    }
    assert.equal(await gitfsOk(['cat', '--repo', repo, 'a@b:a']), '1\n');
    for (const bad of ['rel@{2026', 'a@b@{x}']) assert.equal((await gitfs(['log', '--repo', repo, bad])).code, 2, bad);
  });

  it('a symbolic branch git made is left out of listings, and a commit with a detached HEAD reports success', async () => {
    const { repo, src } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    writeFileSync(join(src, 'a'), '1\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'one']);
    git(repo, ['symbolic-ref', 'refs/heads/alias', 'refs/heads/main']);
    assert.match(await gitfsOk(['branch', '--repo', repo]), /^\* [0-9a-f]{12} main\n$/);
    git(repo, ['update-ref', '--no-deref', 'HEAD', git(repo, ['rev-parse', 'main']).trim()]);
    writeFileSync(join(src, 'a'), '2\n');
    const r = await gitfs(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'two']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(git(repo, ['log', '-1', '--format=%s', 'main']).trim(), 'two');
  });

  it('a branch file that holds no object id (empty, or damaged) is named by gitfs fsck and gitfs branch, stops no other command, hides no packed value, and gitfs branch delete removes it', async () => {
    const { repo, src } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    writeFileSync(join(src, 'a'), '1\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'one']);
    await gitfsOk(['branch', '--repo', repo, 'create', 'packed']);
    execFileSync('git', [`--git-dir=${repo}`, 'pack-refs', '--all']);
    writeFileSync(join(repo, 'refs', 'heads', 'emptyref'), '');
    writeFileSync(join(repo, 'refs', 'heads', 'packed'), 'nothex\n');
    const listed = await gitfs(['branch', '--repo', repo]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^\* [0-9a-f]{12} main\n$/, 'the broken loose file hides the packed value, as in git');
    assert.match(listed.stderr, /ignoring broken branch emptyref: .*does not hold an object id: ""/);
    assert.match(listed.stderr, /ignoring broken branch packed: .*"nothex\\n"/);
    const checked = await gitfs(['fsck', '--repo', repo]);
    assert.equal(checked.code, 8, checked.stdout + checked.stderr);
    assert.match(checked.stdout, /^GITFS_IO branch emptyref: .* \(gitfs branch delete emptyref removes it\)$/m);
    assert.match(checked.stdout, /of 1 branches: 2 problems\n$/);
    await gitfsOk(['stats', '--repo', repo]);
    assert.match(await gitfsOk(['branch', '--repo', repo, 'delete', 'emptyref']), /^removed the broken file of emptyref; nothing names what it was at\n$/);
    // Only the broken file goes: the packed value counts again, and the reflog stays.
    const packedAt = git(repo, ['rev-parse', 'main']).trim();
    assert.equal(await gitfsOk(['branch', '--repo', repo, 'delete', 'packed']), `removed the broken file of packed; packed is at ${packedAt.slice(0, 12)} again, as packed-refs holds it\n`);
    assert.match(await gitfsOk(['fsck', '--repo', repo]), /of 2 branches: 0 problems\n$/);
    // A broken file over a reflog (a crash tore the ref, not its log): the command names the commit to bring back.
    await gitfsOk(['branch', '--repo', repo, 'create', 'solo']);
    writeFileSync(join(repo, 'refs', 'heads', 'solo'), '');
    const told = await gitfsOk(['branch', '--repo', repo, 'delete', 'solo']);
    assert.equal(told, `removed the broken file of solo; its reflog is kept: it was last at ${packedAt.slice(0, 12)} (gitfs branch create solo ${packedAt} brings it back)\n`);
    await gitfsOk(['branch', '--repo', repo, 'create', 'solo', packedAt]);
    assert.equal(git(repo, ['rev-parse', 'solo']).trim(), packedAt);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });

  it('where the history kept ends (a policy keeps one commit), show prints the commit and its paths as added, and REV~1 is GITFS_UNKNOWN_REVISION saying why', async () => {
    const { repo, src } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    for (const n of ['1', '2']) {
      writeFileSync(join(src, 'a'), `${n}\n`);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', n]);
    }
    const config = join(src, '..', 'policies.json');
    writeFileSync(config, JSON.stringify({ policies: [{ branches: 'main', history: 1 }] }));
    await gitfsOk(['prune', '--repo', repo, '--grace', '0', '--config', config]);
    // git reads the cut commit as a root (the shallow file); its own parent line still names the commit before.
    const parent = /^parent ([0-9a-f]{40})$/m.exec(git(repo, ['cat-file', '-p', 'main']))?.[1] ?? assert.fail('no parent line');
    assert.throws(() => git(repo, ['cat-file', '-e', parent]), 'the parent is gone');
    const shown = await gitfsOk(['show', '--repo', repo, 'main']);
    assert.match(shown, new RegExp(`^parent ${parent}$[\\s\\S]*the history kept here ends at this commit[\\s\\S]*\\ba\\b`, 'm'));
    const before = await gitfs(['log', '--repo', repo, 'main~1']);
    assert.equal(before.code, 4, before.stderr);
    assert.match(before.stderr, /unknown revision "main~1": the parent [0-9a-f]{12} of [0-9a-f]{12} is not here \(the history kept ends there, or it was lost: gitfs fsck tells\) \[GITFS_UNKNOWN_REVISION\]/);
    assert.match(await gitfsOk(['log', '--repo', repo, '--oneline', 'main']), /^[0-9a-f]{12} .* 2\n$/, 'log stops where the history kept ends');
  });
});
