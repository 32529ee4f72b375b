/**
 * Reaching a repository's working layers from a command: through the mount's control socket
 * when a mount owns them, directly otherwise.
 */
import type { BranchName } from '../branches/ref-name.js';
import type { Repository } from '../repo/repository.js';
import { askMount } from '../mount/control.js';
import type { WorkCommitResult } from '../work/work-commit.js';
import type { WorkChange } from '../work/work-status.js';
import { Workspace } from '../work/workspace.js';

export type BranchStatus = { branch: BranchName; base: string | null; changes: WorkChange[] };

export interface WorkAccess {
  commit(branch: BranchName, message: string): Promise<WorkCommitResult>;
  status(branch?: BranchName): Promise<BranchStatus[]>;
  reset(branch: BranchName): Promise<number>;
}

export async function withWork<T>(repo: Repository, body: (work: WorkAccess) => Promise<T>): Promise<T> {
  const gitDir = repo.gitDir;
  if ((await askMount(gitDir, { op: 'ping' })) !== undefined) {
    return body({
      commit: async (branch, message) => (await askMount(gitDir, { op: 'commit', branch, message })) as WorkCommitResult,
      status: async (branch) => (await askMount(gitDir, branch === undefined ? { op: 'status' } : { op: 'status', branch })) as BranchStatus[],
      reset: async (branch) => ((await askMount(gitDir, { op: 'reset', branch })) as { dropped: number }).dropped,
    });
  }
  const ws = await Workspace.open(repo);
  try {
    return await body({ commit: (b, m) => ws.commit(b, m), status: (b) => ws.status(b), reset: (b) => ws.reset(b) });
  } finally {
    await ws.close();
  }
}
