/**
 * The rollout agent of a node (run by `gitfs serve` when its config names channels): one
 * ChannelAgent per branch this node holds that a configured channel pattern matches (the first
 * pattern that matches decides), created when the branch appears. It hands the announcer this
 * node's reports and answers `gitfs rollout` through the daemon's socket.
 */
import { join } from 'node:path';
import type { BranchName } from '../branches/ref-name.js';
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { RolloutReport } from '../multicast/announcement.js';
import type { Peer } from '../multicast/peer-table.js';
import type { Repository } from '../repo/repository.js';
import { compileBranchPattern } from '../swarm/branch-pattern.js';
import type { Logger } from '../util/log.js';
import { ChannelAgent, type ChannelStatus } from './channel-agent.js';
import type { RolloutConfig } from './rollout-config.js';

export interface RolloutComponents {
  readonly repo: Repository;
  readonly log: Logger;
  readonly now: () => number;
  readonly self: NodeId;
  readonly peers: () => readonly Peer[];
  readonly changed: () => void;
}

export class RolloutAgent {
  private readonly agents = new Map<BranchName, ChannelAgent>();
  private readonly patterns: { test: (name: string) => boolean; index: number }[];
  private stopped = false;

  constructor(
    private readonly c: RolloutComponents,
    private readonly cfg: RolloutConfig,
  ) {
    this.patterns = cfg.channels.map((ch, index) => {
      const p = compileBranchPattern(ch.channel);
      return { test: (name: string) => p.matches(name), index };
    });
  }

  /** Starts agents for the channels this node holds, and pokes them all. Called on every ref or peer change. */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    for (const { name } of await this.c.repo.refs.list()) {
      if (this.agents.has(name)) continue;
      const match = this.patterns.find((p) => p.test(name));
      if (match === undefined) continue;
      const agent = new ChannelAgent(
        { ...this.c, trusted: this.cfg.trustedKeys, dir: join(this.c.repo.gitDir, 'gitfs', 'rollout', ...name.split('/')) },
        this.cfg.channels[match.index] as RolloutConfig['channels'][number],
        name,
      );
      this.agents.set(name, agent);
      await agent.start();
      this.c.changed();
    }
    for (const a of this.agents.values()) a.poke();
  }

  /** This node's reports, for the announcer. */
  reports(): RolloutReport[] {
    return [...this.agents.values()].map((a) => a.current());
  }

  private agent(channel: string): ChannelAgent {
    const a = this.agents.get(channel as BranchName);
    if (a === undefined) throw new GitfsError(ErrorCodes.UNKNOWN_BRANCH, `this node applies no channel ${channel} (none configured, or the branch is not here yet)`, { channel });
    return a;
  }

  status(channel?: string): ChannelStatus[] {
    return channel === undefined ? [...this.agents.values()].map((a) => a.status()) : [this.agent(channel).status()];
  }

  rollback(channel: string): Promise<{ from: string | null; to: string | null }> {
    return this.agent(channel).recall();
  }

  pause(channel: string, paused: boolean): { channel: string; paused: boolean } {
    this.agent(channel).setPaused(paused);
    return { channel, paused };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
  }
}
