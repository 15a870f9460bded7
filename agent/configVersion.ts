// Before the agent starts a group it asks the API for the job's Brain configuration version and
// passes it to every trainer as ROVER_CONFIG_VERSION: a trainer reads the configuration it
// starts with (client.config()) and watches for newer versions than that one.
import type { ApiEndpoints } from '../common/apiUrls.ts';
import { jobConfigResponse } from '../common/trainerProtocol.ts';
import type { Logger } from '../common/logger.ts';
import type { AgentSettings } from './settings.ts';

/** `{ROVER_CONFIG_VERSION}`, or nothing when the API cannot say (the configuration is advisory: the group starts anyway). */
export async function configVersionEnv(settings: AgentSettings, endpoints: ApiEndpoints, log: Logger): Promise<Record<string, string>> {
  try {
    const res = await endpoints.fetch(`/v1/jobs/${encodeURIComponent(settings.job)}/config`, { headers: { authorization: `Bearer ${settings.token}` } }, { attemptTimeoutMs: 10_000 });
    if (!res.ok) throw new Error(`HTTP ${res.status} ${await res.text()}`);
    return { ROVER_CONFIG_VERSION: jobConfigResponse.parse(await res.json()).version };
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'GET config failed: trainers start without ROVER_CONFIG_VERSION');
    return {};
  }
}
