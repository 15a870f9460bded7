// Pre-flight node check, coordinated through the store so any API replica answers any poll: each
// poll reads the job's check state, steps the state machine (common/nodeCheckSession.ts) and, when
// it changed, writes it back by compare-and-set together with the events it produced (results and
// verdicts go to the event bus as node_check events; the job workflow acts on the verdicts).
// A lost race rereads and steps again, so every change is applied exactly once. A heartbeat asks
// wantsPeer, which reads the short partner list written beside the state, never the state.
import { emptyNodeCheckState, needsLiveNodes, partnersWanted, stepNodeCheck, type NodeCheckRules } from '../common/nodeCheckSession.ts';
import { nodeCheckEnabled, type NodeCheckRequest, type NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import type { Job, Store } from '../store/index.ts';
import { HttpError } from './errors.ts';

const LIVE = ['pending', 'launching', 'running'];
/** Writers racing on one job's row: a poll that keeps losing answers 503 and the agent retries. */
const CAS_ATTEMPTS = 50;

export class NodeCheckCoordinator {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /**
   * Whether the job's current check round needs this node incarnation, which passed its own
   * check, as a peer (its heartbeat reply says so): one short column of one row, read only for a
   * job whose check is on.
   */
  async wantsPeer(job: Job, node: number, incarnation: number): Promise<boolean> {
    const spec = job.spec.spec;
    if (!nodeCheckEnabled(spec.diagnosis?.nodeCheck, spec.nodes.max)) return false;
    const wanted = await this.store.nodeChecks.partnersWanted(job.id);
    return wanted?.tokenDigest === job.tokenDigest && wanted.partners.includes(`${node}/${incarnation}`);
  }

  async poll(job: Job, req: NodeCheckRequest): Promise<NodeCheckResponse> {
    const spec = job.spec.spec;
    if (!nodeCheckEnabled(spec.diagnosis?.nodeCheck, spec.nodes.max)) return { action: 'skip' };
    const rules: NodeCheckRules = {
      timeoutMs: spec.diagnosis?.timeout ?? 30_000,
      probeBytes: spec.diagnosis?.probeBytes ?? 1_048_576,
      initialNodes: spec.nodes.initial,
      minNodes: spec.nodes.min,
      excludeStragglers: spec.diagnosis?.excludeStragglers === true,
    };
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const record = await this.store.nodeChecks.get(job.id);
      // A row of an earlier run under the same name is overwritten, not continued.
      const current = record?.tokenDigest === job.tokenDigest ? record.state : emptyNodeCheckState();
      const version = record?.version ?? 0;
      let live: { node: number; incarnation: number }[] = [];
      if (needsLiveNodes(current, req)) {
        live = (await this.store.nodes.listByJob(job.id, { statuses: LIVE })).map((n) => ({ node: n.nodeId, incarnation: n.incarnation }));
      }
      const step = stepNodeCheck(current, req, rules, this.now(), () => live);
      if (record && JSON.stringify(step.state) === JSON.stringify(record.state)) return step.response;
      const written = await this.store.transaction(async (tx) => {
        if (!(await tx.nodeChecks.compareAndSet(job.id, version, { tokenDigest: job.tokenDigest, state: step.state, partnersWanted: partnersWanted(step.state) }))) return false;
        for (const e of step.events) {
          await tx.nodeEvents.append({ jobId: job.id, nodeId: e.nodeId, incarnation: e.incarnation, kind: 'node_check', source: e.source, data: e.data });
        }
        return true;
      });
      if (written) return step.response;
    }
    throw new HttpError(503, 'busy', `node check of job ${job.id}: its state changed under this poll ${CAS_ATTEMPTS} times in a row; poll again`);
  }
}
