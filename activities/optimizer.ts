// The job's Brain client: POST /brain/v1/optimize. Unreachable or 5xx → throw, so Temporal
// retries with backoff; a 4xx (the Brain refuses the request) → null, not worth retrying.
// Every plan the job receives, or makes itself while the Brain is down, becomes a `brain_plan`
// event, so `rover events --kind brain_plan` shows why a job grew, shrank or got more memory.
import type { BrainPlan, OptimizerActivities } from '../common/brainPlans.ts';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { historyKey, type Store, type TransactionScope } from '../store/index.ts';

async function appendPlanEvent(store: Pick<TransactionScope, 'nodeEvents'>, job: string, plan: BrainPlan, decidedBy: 'brain' | 'job master'): Promise<void> {
  await store.nodeEvents.append({
    jobId: job,
    nodeId: plan.nodeId ?? null,
    kind: 'brain_plan',
    data: {
      optimizer: plan.stage,
      rule: plan.rule,
      reason: plan.reason,
      decidedBy,
      ...(plan.nodes !== undefined && { nodes: plan.nodes }),
      ...(plan.resources && { memoryBytes: plan.resources.memoryBytes, cpu: plan.resources.cpu }),
      inputs: plan.inputs ?? {},
    },
  });
}

export function createOptimizerActivities({ config, logger, store }: { config: RoverConfig; logger: Logger; store: Store }): OptimizerActivities {
  return {
    async optimize(input) {
      const url = `${config.brain.url}/brain/v1/optimize`;
      const res = await fetch(url, {
        method: 'POST',
        // The operator token: the activity's input names the job but carries no token of it.
        headers: { 'content-type': 'application/json', ...(config.operatorToken && { authorization: `Bearer ${config.operatorToken}` }) },
        body: JSON.stringify(input),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json().catch(() => ({}))) as { plan?: BrainPlan; message?: string };
      if (res.status >= 400 && res.status < 500) {
        logger.warn({ jobId: input.job, stage: input.stage, status: res.status, message: body.message }, 'Brain refused the plan request');
        return null;
      }
      if (!res.ok || !body.plan) throw new Error(`Brain ${url}: HTTP ${res.status} ${body.message ?? ''}`.trim());
      logger.info({ jobId: input.job, stage: input.stage, rule: body.plan.rule, reason: body.plan.reason }, 'Brain plan');
      // A running plan without enough data recommends nothing: not worth an event every interval.
      if (body.plan.rule !== 'insufficient-data') await appendPlanEvent(store, input.job, body.plan, 'brain');
      return body.plan;
    },

    async recordLocalPlan({ job, plan, failure }) {
      logger.warn({ jobId: job, stage: plan.stage, rule: plan.rule, reason: plan.reason }, 'plan made by the job master: the Brain did not answer');
      const row = failure && (await store.jobs.get(job));
      await store.transaction(async (tx) => {
        if (row && failure) {
          // Keyed as the Brain keys it (this run of the job name), so the summary counts it.
          await tx.jobHistory.recordFailure({ jobId: historyKey(job, row.tokenDigest), nodeId: plan.nodeId ?? 0, ...failure, oom: true });
        }
        await appendPlanEvent(tx, job, plan, 'job master');
      });
    },
  };
}
