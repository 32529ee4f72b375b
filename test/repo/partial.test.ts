/**
 * Marking a repository partial edits its config as git does, under `config.lock`: a `git config`
 * writing at the same moment loses nothing, and git reads the result.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { renameSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Repository } from '../../src/repo/repository.js';
import { isPartial, markPartial } from '../../src/repo/partial.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDirs } from '../support/tmp.js';

describe('repo/partial', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('waits for another writer of the config (its config.lock) and keeps what it wrote; git reads the partial clone settings', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    await repo.close();
    const config = join(repo.gitDir, 'config');
    // Another writer (git config) holds the lock, its new config written into it, not yet renamed.
    writeFileSync(`${config}.lock`, `${readFileSync(config, 'utf8')}[user]\n\tname = Other Writer\n`);
    let done = false;
    const marking = markPartial(repo.gitDir, systemClock).then(() => (done = true));
    await sleep(300);
    assert.equal(done, false, 'markPartial wrote the config while another writer held config.lock');
    renameSync(`${config}.lock`, config);
    await marking;
    const git = (key: string): string => execFileSync('git', ['--git-dir', repo.gitDir, 'config', '--get', key], { encoding: 'utf8' }).trim();
    assert.equal(git('user.name'), 'Other Writer');
    assert.equal(git('extensions.partialClone'), 'gitfs');
    assert.equal(git('remote.gitfs.promisor'), 'true');
    assert.equal(git('core.repositoryformatversion'), '1');
    assert.equal(await isPartial(repo.gitDir), true);
    const once = readFileSync(config, 'utf8');
    await markPartial(repo.gitDir, systemClock);
    assert.equal(readFileSync(config, 'utf8'), once, 'marking again changes nothing');
  });
});
