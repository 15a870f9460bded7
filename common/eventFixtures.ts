// Events for policy and workflow tests, held to the rules real rows are: the data is typed by its
// kind, checked as the store's typed append checks a writer's data, and read back through the
// parser the workflow's watchNodes uses — so a test cannot feed JobState an event the bus would
// never deliver.
import { eventDataProblem, parseJobEvent, type EventDataInput, type JobEvent, type NodeEventKind } from './events.ts';

/** One event a test writes: its data as a writer of that kind gives it. */
export interface EventFixture<K extends NodeEventKind> {
  id: number;
  kind: K;
  nodeId: number | null;
  incarnation: number | null;
  data: EventDataInput<K>;
  at: number;
}

/**
 * The event as JobState takes it, parsed as watchNodes parses a stored row.
 * Throws when the data does not fit its kind's schema or carries a field it does not describe.
 */
export function testEvent<K extends NodeEventKind>(e: EventFixture<K>): JobEvent {
  const problem = eventDataProblem(e.kind, e.data);
  if (problem) throw new Error(`test event ${e.id} (${e.kind}) would be refused by the bus: ${problem}`);
  const parsed = parseJobEvent({ id: e.id, kind: e.kind, nodeId: e.nodeId, incarnation: e.incarnation, data: e.data, createdAt: e.at });
  if ('rejected' in parsed) throw new Error(`test event ${e.id} (${e.kind}) would be rejected by watchNodes: ${parsed.rejected.problem}`);
  return parsed.event;
}

/** round_closed's data as the API writes it: `nodes` (incarnation 0) ranked in order, rank 0 on localhost. */
export function roundClosedData(round: number, nodes: number[], excluded: number[] = []): EventDataInput<'round_closed'> {
  return { round, members: nodes.map((node, groupRank) => ({ node, incarnation: 0, groupRank })), excluded, masterAddr: '127.0.0.1', masterPort: 29500 };
}
