// Before the agent starts a group it asks the API where the round resumes (the latest
// committed checkpoint, after the ledger rewound for the round) and passes it to every trainer
// as ROVER_RESUME_STEP.
import { latestCheckpoint } from '../common/trainerProtocol.ts';
import type { ApiEndpoints } from '../common/apiUrls.ts';
import type { AgentSettings } from './settings.ts';

/** `endpoints`: the agent's API replicas (the API client's, so both keep to the same one). */
export async function resumeEnv(settings: AgentSettings, endpoints: ApiEndpoints, round: { round: number; groupRank: number }): Promise<Record<string, string>> {
  const q = `round=${round.round}&node=${settings.node}&incarnation=${settings.incarnation}&rank=${round.groupRank * settings.nprocPerNode}`;
  const path = `/v1/jobs/${encodeURIComponent(settings.job)}/checkpoints/latest?${q}`;
  const res = await endpoints.fetch(path, { headers: { authorization: `Bearer ${settings.token}` } }, { attemptTimeoutMs: 10_000 });
  if (!res.ok) throw new Error(`GET checkpoints/latest: HTTP ${res.status} ${await res.text()}`);
  const latest = latestCheckpoint.parse(await res.json());
  return { ROVER_RESUME_STEP: String(latest.step) };
}
