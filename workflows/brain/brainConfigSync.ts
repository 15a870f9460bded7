// One workflow per configuration source: read it every interval and publish a new versioned
// snapshot when it changed. A broken source keeps its last good snapshot; the error is kept in
// the workflow's state (query `status`) until a good read clears it. Rejected entries are left
// out of the snapshot and listed in the state (`rejected`). Never fails on its own.
import { condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BrainActivities } from '../../common/brainActivities.ts';
import { type BrainConfigSyncInput, type BrainSyncState, brainSyncStatusQuery, setIntervalSignal, syncNowSignal } from './messages.ts';

const acts = proxyActivities<BrainActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3 },
});

export async function brainConfigSync(input: BrainConfigSyncInput): Promise<void> {
  const state: BrainSyncState = input.carried ?? {
    version: null, configs: 0, syncs: 0, failures: 0, lastError: null, rejected: [], lastErrorAt: null, lastSyncAt: null, lastChangeAt: null, runs: 0,
  };
  // State carried by a run of an older Rover has no list of rejected entries.
  state.rejected ??= [];
  state.runs += 1;
  let syncNow = false;
  let syncsThisRun = 0;
  let intervalMs = input.intervalMs;
  setHandler(brainSyncStatusQuery, () => ({ ...state, source: input.source, intervalMs }));
  setHandler(syncNowSignal, () => void (syncNow = true));
  setHandler(setIntervalSignal, (ms) => {
    if (Number.isInteger(ms) && ms > 0) intervalMs = ms;
  });

  for (;;) {
    syncNow = false;
    const now = Date.now();
    try {
      const result = await acts.syncBrainSource({ source: input.source });
      state.version = result.version;
      state.configs = result.configs;
      if (result.changed) state.lastChangeAt = now;
      if (result.rejected) state.rejected = result.rejected;
      state.lastError = result.error;
      if (result.error !== null) state.lastErrorAt = now;
      if (!result.ok) state.failures += 1;
    } catch (err) {
      // The store itself is unreachable: keep serving what was published, try again next time.
      state.lastError = `sync failed: ${err instanceof Error ? err.message : String(err)}`;
      state.lastErrorAt = now;
      state.failures += 1;
    }
    state.syncs += 1;
    state.lastSyncAt = now;
    syncsThisRun += 1;
    await condition(() => syncNow, intervalMs);
    const cap = input.continueAsNewAfterSyncs;
    if (workflowInfo().continueAsNewSuggested || (cap !== undefined && syncsThisRun >= cap)) {
      await continueAsNew<typeof brainConfigSync>({ ...input, intervalMs, carried: state });
    }
  }
}
