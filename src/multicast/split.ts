/**
 * Cutting a head list into announcement parts that each fit one datagram. Heads are sorted by
 * name and parts cover consecutive name ranges, [first name, next part's first name), the
 * first from '' and the last unbounded, so together they cover every name exactly once.
 */
import { compareNames, encodeAnnouncement, MAX_PARTS, type Announcement, type Head } from './announcement.js';

export type PartTemplate = Omit<Announcement, 'part' | 'parts' | 'rangeStart' | 'rangeEnd' | 'heads'>;

/** Every part, numbered, each encoding to at most `budget` bytes. Heads too long to fit alone are skipped and returned. */
export function splitAnnouncement(template: PartTemplate, heads: readonly Head[], budget: number): { parts: Announcement[]; skipped: Head[] } {
  const sorted = [...heads].sort((a, b) => compareNames(a.branch, b.branch));
  const size = (hs: readonly Head[], start: string, end: string): number =>
    encodeAnnouncement({ ...template, part: MAX_PARTS - 1, parts: MAX_PARTS, rangeStart: start, rangeEnd: end, heads: hs }).length;
  const ranges: { start: string; heads: Head[] }[] = [];
  const skipped: Head[] = [];
  let current: { start: string; heads: Head[] } = { start: '', heads: [] };
  for (let i = 0; i < sorted.length; i++) {
    const head = sorted[i] as Head;
    const nextName = sorted[i + 1]?.branch ?? '';
    if (size([...current.heads, head], current.start, nextName) <= budget) {
      current.heads.push(head);
      continue;
    }
    if (current.heads.length > 0) {
      ranges.push(current);
      current = { start: head.branch, heads: [] };
      if (size([head], current.start, nextName) <= budget) {
        current.heads.push(head);
        continue;
      }
    }
    skipped.push(head);
  }
  ranges.push(current);
  if (ranges.length > MAX_PARTS) throw new RangeError(`${sorted.length} heads need more than ${MAX_PARTS} parts`);
  const parts = ranges.map(
    (r, i): Announcement => ({ ...template, part: i, parts: ranges.length, rangeStart: r.start, rangeEnd: ranges[i + 1]?.start ?? '', heads: r.heads }),
  );
  return { parts, skipped };
}
