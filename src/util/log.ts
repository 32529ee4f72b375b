/**
 * Structured logging: one JSON object per line, `{"t": ms, "level", "ns", "event", …fields}`.
 * Components get a namespaced Logger; only the CLI decides where lines go.
 */
import type { Clock } from './clock.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  child(ns: string): Logger;
}

export function jsonLogger(write: (line: string) => void, clock: Clock, options: { ns?: string; minLevel?: Level } = {}): Logger {
  const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  const min = order[options.minLevel ?? 'info'];
  const ns = options.ns ?? 'gitfs';
  return {
    log(level, event, fields = {}) {
      if (order[level] < min) return;
      write(`${JSON.stringify({ t: clock.now(), level, ns, event, ...fields })}\n`);
    },
    child(sub) {
      return jsonLogger(write, clock, { ns: `${ns}:${sub}`, minLevel: options.minLevel ?? 'info' });
    },
  };
}

/** A logger that drops everything (for callers that have nothing to say). */
export const silentLogger: Logger = { log: () => undefined, child: () => silentLogger };
