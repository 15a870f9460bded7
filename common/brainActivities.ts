// The activity contract of the brainConfigSync workflow; implemented in activities/brain.ts.

/** What one read of a source did; errors of the source are values, not activity failures. */
export interface SyncResult {
  /** Every entry was valid (false: the source was unreadable — see error — or some entries were rejected). */
  ok: boolean;
  /** The snapshot version now served for this source (null: none yet). */
  version: number | null;
  /** A new snapshot was published by this read. */
  changed: boolean;
  /** Configurations in the served snapshot. */
  configs: number;
  /** Why the source could not be read at all (its last good snapshot is still served); null when it was read. */
  error: string | null;
  /**
   * The read's rejected entries, one problem a line (`<file|row|key>: <field>: <reason>`); every
   * other entry is served. Absent when the source could not be read (the previous list stands).
   */
  rejected?: string[];
}

export interface BrainActivities {
  /** Reads one source and publishes a new snapshot if its configurations changed. */
  syncBrainSource(input: { source: string }): Promise<SyncResult>;
}
