// The event schemas against what writers send: every event of the recorded workflow histories
// parses (so JobState, which trusts the types, reads old runs as it did), rows no schema
// describes are reported and skipped, and a writer cannot add a field its kind lacks.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { eventDataProblem, parseJobEvent, parseJobEvents, type EventRow } from './events.ts';

const historiesDir = fileURLToPath(new URL('../test/histories', import.meta.url));

interface RecordedEvent {
  id: number;
  kind: string;
  nodeId: number | null;
  incarnation: number | null;
  data: unknown;
  at: number;
}

/** The events of every watchNodes result recorded in a history (a bare list, or `{events}`). */
function recordedEvents(file: string): RecordedEvent[] {
  const history = JSON.parse(readFileSync(path.join(historiesDir, file), 'utf8')) as { events: { activityTaskCompletedEventAttributes?: { result?: { payloads?: { data?: string }[] } } }[] };
  return history.events.flatMap((e) =>
    (e.activityTaskCompletedEventAttributes?.result?.payloads ?? []).flatMap((p) => {
      if (!p.data) return [];
      const value = JSON.parse(Buffer.from(p.data, 'base64').toString('utf8')) as unknown;
      const list = Array.isArray(value) ? value : (value as { events?: unknown } | null)?.events;
      return Array.isArray(list) ? list.filter((x): x is RecordedEvent => typeof x === 'object' && x !== null && 'kind' in x && 'data' in x) : [];
    }),
  );
}

const row = (kind: string, data: unknown, id = 1): EventRow => ({ id, kind, nodeId: 0, incarnation: 0, data, createdAt: 5 });

describe('event schemas', () => {
  const files = readdirSync(historiesDir).filter((f) => f.endsWith('.json')).sort();

  it.each(files)('accept every event recorded in %s', (file) => {
    const events = recordedEvents(file);
    const { rejected } = parseJobEvents(events.map((e) => ({ ...e, createdAt: e.at })));
    expect(rejected).toEqual([]);
  });

  it('have recorded events of most kinds the workflow acts on to check', () => {
    const kinds = new Set(files.flatMap(recordedEvents).map((e) => e.kind));
    expect(kinds.size).toBeGreaterThanOrEqual(8);
  });

  it('parses a row into a typed event with its store time', () => {
    expect(parseJobEvent(row('round_opened', { round: 2, cause: 'scale to 3 nodes' }))).toEqual({
      event: { id: 1, kind: 'round_opened', nodeId: 0, incarnation: 0, data: { round: 2, cause: 'scale to 3 nodes' }, at: 5 },
    });
  });

  it('reports an unknown kind and malformed data with the field, and keeps the rows around them', () => {
    const { events, rejected } = parseJobEvents([
      row('round_opened', { round: 1, cause: 'job start' }, 1),
      row('node_exploded', {}, 2),
      row('checkpoint_committed', { step: 'ten', worldSize: 2, round: 1, doneShards: 0 }, 3),
      row('epoch_done', { epoch: 0 }, 4),
    ]);
    expect(events.map((e) => e.id)).toEqual([1, 4]);
    expect(rejected).toEqual([
      { id: 2, kind: 'node_exploded', nodeId: 0, incarnation: 0, problem: 'unknown event kind "node_exploded"' },
      { id: 3, kind: 'checkpoint_committed', nodeId: 0, incarnation: 0, problem: expect.stringContaining('data.step:') },
    ]);
  });

  it('lets a writer send what its kind describes and nothing else, at any depth', () => {
    expect(eventDataProblem('node_registered', { pid: 42, host: 'node-0' })).toBeUndefined();
    expect(eventDataProblem('node_registered', { pid: 42, host: 'node-0', extra: 1 })).toBe('data.extra: not a field of node_registered');
    const members = [{ node: 0, incarnation: 0, groupRank: 0, host: 'h' }];
    expect(eventDataProblem('round_closed', { round: 1, members, excluded: [], masterAddr: 'h', masterPort: 1 })).toBe('data.members.0.host: not a field of round_closed');
    expect(eventDataProblem('node_registered', { pid: '42', host: 'node-0' })).toMatch(/^data\.pid: /);
    // A record's keys are free.
    expect(eventDataProblem('brain_plan', { optimizer: 'oom', rule: 'r', reason: 'why', decidedBy: 'brain', inputs: { anything: { nested: 1 } } })).toBeUndefined();
  });
});
