// How far apart agents started together make their first requests.

/** The bound for the largest launches, and an agent's default when its launcher sets none. */
export const MAX_START_JITTER_MS = 1000;
/** Spacing per agent started together: a thousand agents reach the API about one per millisecond. */
const SPACING_PER_NODE_MS = 1;

/**
 * Bound, in ms, of the uniform random delay each agent of a launch waits before its first request
 * (ROVER_START_JITTER_MS): one millisecond per node started together, at most 1 s. A job's launch
 * or a whole-job relaunch of a thousand nodes spreads its registrations and joins over a second
 * rather than in one burst (issue 14); a single relaunched node registers at once (issue 13's
 * fast agent start).
 */
export function startJitterBoundMs(nodesStartedTogether: number): number {
  return Math.min(MAX_START_JITTER_MS, Math.max(0, nodesStartedTogether) * SPACING_PER_NODE_MS);
}
