// Events for policy tests: a test names only the data fields it is about (JobState reads no
// others), so its events are built here without the schema's other required fields.
import type { JobEvent, NodeEventKind } from './events.ts';

export interface LooseEvent {
  id: number;
  kind: NodeEventKind;
  nodeId: number | null;
  incarnation: number | null;
  data: Record<string, unknown>;
  at: number;
}

/** The event as JobState takes it; the data is not checked against its kind's schema. */
export function testEvent(e: LooseEvent): JobEvent {
  return e as JobEvent;
}
