// The configuration the API's tests build their apps with.
import { loadConfig, type RoverConfig } from '../common/config.ts';

/**
 * loadConfig(env) with a loop-lag limit no test machine reaches: a busy core (a test file
 * running beside this one, a sync hash under load) can stall the event loop past the default's
 * half-second for heartbeats, and the request would be shed with 429 (api/overload.ts). Shedding
 * has its own tests (api/overload.test.ts); these are about what the routes answer.
 */
export function apiTestConfig(env: Record<string, string> = {}): RoverConfig {
  return loadConfig({ ROVER_API_MAX_LAG_MS: '600000', ...env });
}
