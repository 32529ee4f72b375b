/**
 * The rollout agent of a node (run by `gitfs serve` when its config names channels): one
 * ChannelAgent per configured channel, reporting from the start (before the channel's first
 * release arrives, so every node plans the same waves). It hands the announcer this node's
 * reports and answers `gitfs rollout` through the daemon's socket.
 */
import { join } from 'node:path';
import type { BranchName } from '../branches/ref-name.js';
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { RolloutReport } from '../multicast/announcement.js';
import type { Oid } from '../objects/oid.js';
import type { Peer } from '../multicast/peer-table.js';
import type { Repository } from '../repo/repository.js';
import type { Logger } from '../util/log.js';
import { ChannelAgent, type ChannelStatus } from './channel-agent.js';
import { channelKeys, type RolloutConfig } from './rollout-config.js';

export interface RolloutComponents {
  readonly repo: Repository;
  readonly log: Logger;
  readonly now: () => number;
  readonly self: NodeId;
  readonly clusterId: string;
  readonly peers: () => readonly Peer[];
  readonly changed: () => void;
}

export class RolloutAgent {
  private readonly agents = new Map<BranchName, ChannelAgent>();
  private stopped = false;
  private started: Promise<void> | undefined;
  /** The channel agent whose start() runs now, if any. */
  private starting: ChannelAgent | undefined;

  constructor(
    private readonly c: RolloutComponents,
    private readonly cfg: RolloutConfig,
  ) {}

  /** Starts the channel agents (once), then pokes them all. Called on every ref or peer change. */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    this.started ??= this.startAll();
    await this.started;
    for (const a of this.agents.values()) a.poke();
  }

  private async startAll(): Promise<void> {
    for (const ch of this.cfg.channels) {
      // Stopped while an earlier channel started (it may wait for a leftover hook): start no more.
      if (this.stopped) return;
      const name = ch.channel as BranchName;
      const agent = new ChannelAgent({ ...this.c, trusted: channelKeys(this.cfg, ch), dir: join(this.c.repo.gitDir, 'gitfs', 'rollout', ...name.split('/')) }, ch, name);
      this.starting = agent;
      try {
        await agent.start();
        if (!this.stopped) this.agents.set(name, agent);
      } catch (e) {
        // One channel's unreadable state does not stop the others.
        this.c.log.log('error', 'rollout-channel-not-started', { channel: name, error: (e as Error).message });
      } finally {
        this.starting = undefined;
      }
    }
    this.c.changed();
  }

  /** This node's reports, for the announcer. */
  reports(): RolloutReport[] {
    return [...this.agents.values()].map((a) => a.current());
  }

  private agent(channel: string): ChannelAgent {
    const a = this.agents.get(channel as BranchName);
    if (a === undefined) throw new GitfsError(ErrorCodes.UNKNOWN_BRANCH, `this node applies no channel ${channel} (config: rollout.channels)`, { channel });
    return a;
  }

  status(channel?: string): ChannelStatus[] {
    return channel === undefined ? [...this.agents.values()].map((a) => a.status()) : [this.agent(channel).status()];
  }

  rollback(channel: string, signed?: { release: Oid; signature: Buffer }): Promise<{ from: string; to: string; recalled: boolean }> {
    return this.agent(channel).recall(signed);
  }

  async pause(channel: string, paused: boolean): Promise<{ channel: string; paused: boolean }> {
    await this.agent(channel).setPaused(paused);
    return { channel, paused };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // A channel still starting is stopped too: its crash recovery then starts no hook.
    const starting = this.starting;
    await Promise.all([...this.agents.values(), ...(starting === undefined ? [] : [starting])].map((a) => a.stop()));
  }
}
