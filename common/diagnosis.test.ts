// Hang decisions as a table.
import { describe, expect, it } from 'vitest';
import { decideHang, type HangInput } from './diagnosis.ts';

const node = (stepAt: number | null, o: { checkpointing?: boolean; alive?: boolean } = {}) => ({
  stepAt,
  checkpointing: o.checkpointing ?? false,
  processesAlive: o.alive ?? true,
});
const input = (o: Partial<HangInput>): HangInput => ({ now: 100_000, hangTimeoutMs: 10_000, roundOpen: false, roundClosedAt: 0, nodes: [node(95_000)], ...o });

describe('decideHang', () => {
  const table: [string, Partial<HangInput>, boolean][] = [
    ['recent progress', {}, false],
    ['no step for the whole timeout', { nodes: [node(90_000), node(85_000)] }, true],
    ['one node still advancing keeps the job alive', { nodes: [node(80_000), node(99_000)] }, false],
    ['a rendezvous round is open', { roundOpen: true, nodes: [node(1)] }, false],
    ['a checkpoint is being saved', { nodes: [node(1, { checkpointing: true }), node(1)] }, false],
    ['no process alive', { nodes: [node(1, { alive: false })] }, false],
    ['the groups restarted recently and have no step yet', { roundClosedAt: 95_000, nodes: [node(null), node(40_000)] }, false],
    ['the groups restarted long ago and made no step since', { roundClosedAt: 50_000, nodes: [node(null), node(40_000)] }, true],
    ['trainers that never report a step are not judged', { roundClosedAt: 0, nodes: [node(null)] }, false],
  ];
  it.each(table)('%s → hung %s', (_name, o, hung) => {
    expect(decideHang(input(o)).hung).toBe(hung);
  });

  it('identifies a hang by its last progress, so it is reported once', () => {
    const a = decideHang(input({ nodes: [node(80_000)] }));
    const b = decideHang(input({ now: 120_000, nodes: [node(80_000)] }));
    expect(a).toMatchObject({ hung: true, since: 80_000, idleMs: 20_000 });
    expect(b).toMatchObject({ hung: true, since: 80_000, idleMs: 40_000 });
  });
});
