// Hang decisions as a table.
import { describe, expect, it } from 'vitest';
import { decideHang, type HangInput } from './diagnosis.ts';

const node = (stepAt: number | null, o: { checkpointing?: boolean; alive?: boolean } = {}) => ({
  stepAt,
  checkpointing: o.checkpointing ?? false,
  processesAlive: o.alive ?? true,
});
type Case = Partial<Omit<HangInput, 'running'>> & { nodes?: ReturnType<typeof node>[] };
/** The running nodes in aggregate, as the store sums them up (nodes.runningSummary). */
const summary = (nodes: ReturnType<typeof node>[]): HangInput['running'] => {
  const steps = nodes.flatMap((n) => (n.stepAt === null ? [] : [n.stepAt]));
  return { count: nodes.length, lastStepAt: steps.length ? Math.max(...steps) : null, checkpointing: nodes.some((n) => n.checkpointing), processesAlive: nodes.some((n) => n.processesAlive) };
};
const input = ({ nodes = [node(95_000)], ...o }: Case): HangInput => ({
  now: 100_000, hangTimeoutMs: 10_000, startupTimeoutMs: 30_000, checkpointTimeoutMs: 20_000, roundOpen: false, roundClosedAt: 0, running: summary(nodes), ...o,
});

describe('decideHang', () => {
  const table: [string, Case, boolean][] = [
    ['recent progress', {}, false],
    ['no step for the whole timeout', { nodes: [node(90_000), node(85_000)] }, true],
    ['one node still advancing keeps the job alive', { nodes: [node(80_000), node(99_000)] }, false],
    ['a rendezvous round is open', { roundOpen: true, nodes: [node(1)] }, false],
    ['a checkpoint is being saved', { nodes: [node(75_000, { checkpointing: true }), node(75_000)] }, false],
    ['a checkpoint save past hangTimeout + checkpointTimeout', { nodes: [node(69_000, { checkpointing: true }), node(69_000)] }, true],
    ['no process alive', { nodes: [node(1, { alive: false })] }, false],
    ['the groups restarted within startupTimeout and have no step yet', { roundClosedAt: 75_000, nodes: [node(null), node(40_000)] }, false],
    ['the groups restarted longer than startupTimeout ago and made no step since', { roundClosedAt: 65_000, nodes: [node(null), node(40_000)] }, true],
    ['a trainer that never printed a step, past startupTimeout', { roundClosedAt: 60_000, nodes: [node(null)] }, true],
    ['a trainer that never printed a step, within startupTimeout', { roundClosedAt: 80_000, nodes: [node(null)] }, false],
    ['a slow start is judged by startupTimeout, not hangTimeout', { roundClosedAt: 85_000, nodes: [node(null)] }, false],
    ['no round and no step', { roundClosedAt: null, nodes: [node(null)] }, false],
  ];
  it.each(table)('%s → hung %s', (_name, o, hung) => {
    expect(decideHang(input(o)).hung).toBe(hung);
  });

  it('identifies a hang by its last progress, so it is reported once', () => {
    const a = decideHang(input({ nodes: [node(80_000)] }));
    const b = decideHang(input({ now: 120_000, nodes: [node(80_000)] }));
    expect(a).toMatchObject({ hung: true, since: 80_000, idleMs: 20_000, startup: false });
    expect(b).toMatchObject({ hung: true, since: 80_000, idleMs: 40_000 });
  });
});
