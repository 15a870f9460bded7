// The job's Brain client: POST /brain/v1/optimize. Unreachable or 5xx → throw, so Temporal
// retries with backoff; a 4xx (the Brain refuses the request) → null, not worth retrying.
import type { BrainPlan, OptimizerActivities } from '../common/brainPlans.ts';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';

export function createOptimizerActivities({ config, logger }: { config: RoverConfig; logger: Logger }): OptimizerActivities {
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
      return body.plan;
    },
  };
}
