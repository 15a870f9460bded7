// Messages of the brainConfigSync workflow: the CLI, the Brain worker and the workflow share them.
import { defineQuery, defineSignal } from '@temporalio/workflow';

export type { SyncResult } from '../../common/brainActivities.ts';

/** Workflow id of the sync workflow of one source. */
export function brainSyncWorkflowId(source: string): string {
  return `brain-config-sync-${source}`;
}

export interface BrainConfigSyncInput {
  /** The source's name (ROVER_BRAIN_SOURCES). */
  source: string;
  /** Pause between two reads. */
  intervalMs: number;
  /** Continue-as-new after this many syncs (tests); else when the server suggests it. */
  continueAsNewAfterSyncs?: number;
  /** State carried across continue-as-new. */
  carried?: BrainSyncState;
}

export interface BrainSyncState {
  version: number | null;
  configs: number;
  syncs: number;
  /** Reads that could not read the source or rejected an entry. */
  failures: number;
  /** Why the last read could not read the source at all (its last good snapshot is served); cleared by the next read. */
  lastError: string | null;
  /**
   * The last read's rejected entries, one problem a line (`<file|row|key>: <field>: <reason>`);
   * every other entry is served. Kept while the source cannot be read.
   */
  rejected: string[];
  lastErrorAt: number | null;
  lastSyncAt: number | null;
  lastChangeAt: number | null;
  /** Runs of this workflow so far (continue-as-new count + 1). */
  runs: number;
}

export interface BrainSyncStatus extends BrainSyncState {
  source: string;
  intervalMs: number;
}

export const brainSyncStatusQuery = defineQuery<BrainSyncStatus>('status');
/** Read the source now instead of waiting for the interval. */
export const syncNowSignal = defineSignal('syncNow');
/** A new sync interval (ms), e.g. after ROVER_BRAIN_SYNC_INTERVAL_MS changed; used from the next wait. */
export const setIntervalSignal = defineSignal<[number]>('setInterval');
