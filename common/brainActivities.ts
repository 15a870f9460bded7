// The activity contract of the brainConfigSync workflow; implemented in activities/brain.ts.

/** What one read of a source did; errors of the source are values, not activity failures. */
export interface SyncResult {
  /** Every entry was valid (false: the source was unreadable, or some entries were rejected — see error). */
  ok: boolean;
  /** The snapshot version now served for this source (null: none yet). */
  version: number | null;
  /** A new snapshot was published by this read. */
  changed: boolean;
  /** Configurations in the served snapshot. */
  configs: number;
  error: string | null;
}

export interface BrainActivities {
  /** Reads one source and publishes a new snapshot if its configurations changed. */
  syncBrainSource(input: { source: string }): Promise<SyncResult>;
}
