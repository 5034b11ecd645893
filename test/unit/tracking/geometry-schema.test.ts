import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LinesSchema, ZonesSchema, resolveGeometry, type PointXy } from '../../../src/tracking/geometry-schema.js';

// As the lead will plug them in: two keys of a source.
const SourceGeometry = z.strictObject({ zones: ZonesSchema, lines: LinesSchema });

function issues(raw: unknown): { path: string; message: string }[] {
  const result = SourceGeometry.safeParse(raw);
  return result.success ? [] : result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

const square: PointXy[] = [
  [0, 0],
  [10, 0],
  [10, 10],
  [0, 10],
];

describe('zone and line schema', () => {
  it('fills the defaults', () => {
    const parsed = SourceGeometry.parse({ zones: [{ name: 'door', polygon: square }], lines: [{ name: 'gate', from: [0, 5], to: [10, 5] }] });
    expect(parsed.zones[0]).toEqual({ name: 'door', polygon: square, units: 'px', anchor: 'bottom-center', minFrames: 3, minMs: 0 });
    expect(parsed.lines[0]).toEqual({ name: 'gate', from: [0, 5], to: [10, 5], units: 'px', anchor: 'bottom-center', minFrames: 3, minMs: 0, marginFraction: 0.1 });
    expect(SourceGeometry.parse({})).toEqual({ zones: [], lines: [] });
  });

  it.each<{ name: string; zones?: unknown[]; lines?: unknown[] }>([
    { name: 'concave U', zones: [{ name: 'u', polygon: [[0, 0], [30, 0], [30, 30], [20, 30], [20, 10], [10, 10], [10, 30], [0, 30]] }] },
    { name: 'self-touching (two triangles meeting at a point)', zones: [{ name: 't', polygon: [[0, 0], [4, 0], [2, 2], [4, 4], [0, 4], [2, 2]] }] },
    { name: 'bow-tie (zero signed area, two real lobes)', zones: [{ name: 'b', polygon: [[0, 0], [2, 2], [2, 0], [0, 2]] }] },
    { name: 'closing point repeated', zones: [{ name: 'c', polygon: [[0, 0], [1, 0], [1, 1], [0, 0]], units: 'fraction' }] },
    { name: 'fractions on the edges 0 and 1', lines: [{ name: 'l', from: [0, 1], to: [1, 0], units: 'fraction' }] },
    { name: 'px outside the frame (a zone may reach past the edge)', zones: [{ name: 'z', polygon: [[-5, -5], [700, -5], [700, 500]] }] },
    { name: 'a zone and a line may share a name', zones: [{ name: 'door', polygon: square }], lines: [{ name: 'door', from: [0, 0], to: [1, 0] }] },
    { name: 'every key', zones: [{ name: 'z', polygon: square, units: 'px', classes: ['person', '2'], anchor: 'center', minFrames: 1, minMs: 250, dwellMs: 60_000 }] },
  ])('accepts $name', ({ zones, lines }) => {
    expect(issues({ zones, lines })).toEqual([]);
  });

  it.each<{ name: string; raw: unknown; path: string; message: RegExp }>([
    { name: 'fewer than 3 points', raw: { zones: [{ name: 'z', polygon: [[0, 0], [1, 1]] }] }, path: 'zones.0.polygon', message: />=3/ },
    { name: 'fewer than 3 distinct points', raw: { zones: [{ name: 'z', polygon: [[0, 0], [1, 1], [0, 0]] }] }, path: 'zones.0.polygon', message: /at least 3 distinct points \(it has 2\)/ },
    { name: 'collinear points', raw: { zones: [{ name: 'z', polygon: [[0, 0], [1, 1], [2, 2], [3, 3]] }] }, path: 'zones.0.polygon', message: /zero area/ },
    { name: 'collinear fractions (inexact in floating point)', raw: { zones: [{ name: 'z', polygon: [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], units: 'fraction' }] }, path: 'zones.0.polygon', message: /zero area/ },
    { name: 'an outline that only retraces itself', raw: { zones: [{ name: 'z', polygon: [[0, 0], [2, 0], [2, 2], [2, 0]] }] }, path: 'zones.0.polygon', message: /zero area/ },
    { name: 'fraction x above 1', raw: { zones: [{ name: 'z', polygon: [[0, 0], [1.2, 0], [1, 1]], units: 'fraction' }] }, path: 'zones.0.polygon.1.0', message: /0\.\.1 of the frame's width/ },
    { name: 'fraction y below 0', raw: { zones: [{ name: 'z', polygon: [[0, 0], [1, 0], [1, -0.1]], units: 'fraction' }] }, path: 'zones.0.polygon.2.1', message: /0\.\.1 of the frame's height/ },
    { name: 'fraction line end above 1', raw: { lines: [{ name: 'l', from: [0, 2], to: [1, 1], units: 'fraction' }] }, path: 'lines.0.from.1', message: /0\.\.1 of the frame's height/ },
    { name: 'zero-length line', raw: { lines: [{ name: 'l', from: [5, 5], to: [5, 5] }] }, path: 'lines.0.to', message: /zero length/ },
    { name: 'duplicate zone names', raw: { zones: [{ name: 'door', polygon: square }, { name: 'door', polygon: square }] }, path: 'zones.1.name', message: /duplicate zone name "door" \(also zones\.0\)/ },
    { name: 'duplicate line names', raw: { lines: [{ name: 'a', from: [0, 0], to: [1, 0] }, { name: 'b', from: [0, 0], to: [1, 0] }, { name: 'a', from: [0, 0], to: [0, 1] }] }, path: 'lines.2.name', message: /duplicate line name "a" \(also lines\.0\)/ },
    { name: 'empty name', raw: { zones: [{ name: '', polygon: square }] }, path: 'zones.0.name', message: />=1/ },
    { name: 'infinite coordinate', raw: { zones: [{ name: 'z', polygon: [[0, 0], [Infinity, 0], [1, 1]] }] }, path: 'zones.0.polygon.1.0', message: /number/ },
    { name: 'point with three numbers', raw: { lines: [{ name: 'l', from: [0, 0, 0], to: [1, 0] }] }, path: 'lines.0.from', message: /.+/ },
    { name: 'unknown units', raw: { zones: [{ name: 'z', polygon: square, units: 'percent' }] }, path: 'zones.0.units', message: /"px"\|"fraction"/ },
    { name: 'unknown anchor', raw: { lines: [{ name: 'l', from: [0, 0], to: [1, 0], anchor: 'feet' }] }, path: 'lines.0.anchor', message: /bottom-center/ },
    { name: 'empty class list', raw: { zones: [{ name: 'z', polygon: square, classes: [] }] }, path: 'zones.0.classes', message: /omit `classes` for all/ },
    { name: 'minFrames 0', raw: { zones: [{ name: 'z', polygon: square, minFrames: 0 }] }, path: 'zones.0.minFrames', message: />=1/ },
    { name: 'negative minMs', raw: { lines: [{ name: 'l', from: [0, 0], to: [1, 0], minMs: -1 }] }, path: 'lines.0.minMs', message: />=0/ },
    { name: 'dwellMs 0', raw: { zones: [{ name: 'z', polygon: square, dwellMs: 0 }] }, path: 'zones.0.dwellMs', message: />0/ },
    { name: 'dwellMs on a line', raw: { lines: [{ name: 'l', from: [0, 0], to: [1, 0], dwellMs: 5 }] }, path: 'lines.0', message: /dwellMs/ },
    { name: 'zones not a list', raw: { zones: { name: 'z' } }, path: 'zones', message: /array/ },
  ])('rejects $name at $path', ({ raw, path, message }) => {
    const found = issues(raw);
    expect(found.length).toBeGreaterThan(0);
    expect(found).toContainEqual({ path, message: expect.stringMatching(message) as string });
  });

  it('reports a short polygon once', () => {
    expect(issues({ zones: [{ name: 'z', polygon: [[0, 0], [1, 1]] }] })).toHaveLength(1);
  });

  it('reports every problem at once, duplicates included when another entry is invalid', () => {
    const found = issues({
      zones: [
        { name: 'door', polygon: [[0, 0], [1, 1], [2, 2]], anchor: 'feet' },
        { name: 'door', polygon: square, units: 'fraction' },
      ],
      lines: [{ name: 'gate', from: [1, 1], to: [1, 1] }],
    });
    expect(found.map((i) => i.path).sort()).toEqual([
      'lines.0.to',
      'zones.0.anchor',
      'zones.0.polygon',
      'zones.1.name',
      'zones.1.polygon.1.0',
      'zones.1.polygon.2.0',
      'zones.1.polygon.2.1',
      'zones.1.polygon.3.1',
    ]);
  });
});

describe('resolveGeometry', () => {
  const parsed = SourceGeometry.parse({
    zones: [
      { name: 'bottom-half', polygon: [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], units: 'fraction' },
      { name: 'px', polygon: [[1, 2], [3, 4], [5, 0]] },
    ],
    lines: [{ name: 'mid', from: [0.5, 0], to: [0.5, 1], units: 'fraction', classes: ['person'] }],
  });

  it('turns fractions into pixels of the frame and copies pixel shapes', () => {
    const { zones, lines } = resolveGeometry(parsed.zones, parsed.lines, [640, 480]);
    expect(zones[0]).toMatchObject({ units: 'px', polygon: [[0, 240], [640, 240], [640, 480], [0, 480]] });
    expect(zones[1]).toMatchObject({ units: 'px', polygon: [[1, 2], [3, 4], [5, 0]] });
    expect(lines[0]).toEqual({ name: 'mid', from: [320, 0], to: [320, 480], units: 'px', classes: ['person'], anchor: 'bottom-center', minFrames: 3, minMs: 0, marginFraction: 0.1 });
    expect(parsed.zones[0]?.units).toBe('fraction'); // the config is not modified
  });

  it.each<[number, number]>([
    [0, 480],
    [640, -1],
    [NaN, 480],
    [640, Infinity],
  ])('rejects frame size [%s, %s]', (w, h) => {
    expect(() => resolveGeometry(parsed.zones, parsed.lines, [w, h])).toThrow(/frameSizeWh must be two positive numbers/);
  });
});
