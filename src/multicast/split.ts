/**
 * Cutting what a node announces into parts that each fit one datagram. Heads and rollout
 * reports are both keyed by a branch name (a channel is a branch); they are grouped by name,
 * sorted, and parts cover consecutive name ranges, [first name, next part's first name), the
 * first from '' and the last unbounded, so together they cover every name exactly once and a
 * lost part leaves the other ranges intact.
 */
import { compareNames, encodeAnnouncement, MAX_PARTS, type Announcement, type Head, type RolloutReport } from './announcement.js';

/** The fields every part shares. */
export type PartTemplate = Omit<Announcement, 'part' | 'parts' | 'rangeStart' | 'rangeEnd' | 'heads' | 'rollouts'>;

/** Everything announced under one name: its head, its rollout report, or both. */
interface Group {
  readonly name: string;
  readonly heads: Head[];
  readonly rollouts: RolloutReport[];
}

export interface Split {
  readonly parts: Announcement[];
  /** Names too long to fit a part alone, with what they carried. */
  readonly skipped: Head[];
  readonly skippedRollouts: RolloutReport[];
}

function groupsOf(heads: readonly Head[], rollouts: readonly RolloutReport[]): Group[] {
  const byName = new Map<string, Group>();
  const group = (name: string): Group => {
    let g = byName.get(name);
    if (g === undefined) byName.set(name, (g = { name, heads: [], rollouts: [] }));
    return g;
  };
  for (const h of heads) group(h.branch).heads.push(h);
  for (const r of rollouts) group(r.channel).rollouts.push(r);
  return [...byName.values()].sort((a, b) => compareNames(a.name, b.name));
}

/**
 * Every part, numbered, each encoding to at most `budget` bytes. A part's size is its fields'
 * plus each group's entries (protobuf encodes every field and repeated entry apart, so sizes add
 * up): each group is encoded once, not once per part it might join (a split of 1 000 heads
 * re-encoded every part for every head added, 7 % of an idle daemon's CPU).
 */
export function splitAnnouncement(template: PartTemplate, heads: readonly Head[], rollouts: readonly RolloutReport[], budget: number): Split {
  const groups = groupsOf(heads, rollouts);
  const encoded = (start: string, end: string, gs: readonly Group[]): number =>
    encodeAnnouncement({ ...template, part: MAX_PARTS - 1, parts: MAX_PARTS, rangeStart: start, rangeEnd: end, heads: gs.flatMap((g) => g.heads), rollouts: gs.flatMap((g) => g.rollouts) }).length;
  const empty = encoded('', '', []);
  const ranges: { start: string; groups: Group[] }[] = [];
  const skipped: Group[] = [];
  let current: { start: string; groups: Group[]; bytes: number } = { start: '', groups: [], bytes: 0 };
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i] as Group;
    const nextName = groups[i + 1]?.name ?? '';
    const bytes = encoded('', '', [g]) - empty;
    if (encoded(current.start, nextName, []) + current.bytes + bytes <= budget) {
      current.groups.push(g);
      current.bytes += bytes;
      continue;
    }
    if (current.groups.length > 0) {
      ranges.push(current);
      current = { start: g.name, groups: [], bytes: 0 };
      if (encoded(current.start, nextName, []) + bytes <= budget) {
        current.groups.push(g);
        current.bytes = bytes;
        continue;
      }
    }
    skipped.push(g);
  }
  ranges.push(current);
  if (ranges.length > MAX_PARTS) throw new RangeError(`${groups.length} names need more than ${MAX_PARTS} parts`);
  const parts = ranges.map(
    (r, i): Announcement => ({
      ...template,
      part: i,
      parts: ranges.length,
      rangeStart: r.start,
      rangeEnd: ranges[i + 1]?.start ?? '',
      heads: r.groups.flatMap((g) => g.heads),
      rollouts: r.groups.flatMap((g) => g.rollouts),
    }),
  );
  return { parts, skipped: skipped.flatMap((g) => g.heads), skippedRollouts: skipped.flatMap((g) => g.rollouts) };
}
