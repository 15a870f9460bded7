// A place Brain configurations live (YAML directory, SQL table, Kubernetes ConfigMap, …).
// A brainConfigSync workflow reads each source periodically and publishes what it returns as
// a versioned snapshot; a source that throws keeps its last good snapshot.
import type { SourceRead } from '../config/schema.ts';

export type { BrainConfigInput, SourceRead } from '../config/schema.ts';

export interface ConfigSource {
  /** Stable, unique name: the snapshot key and the sync workflow id suffix (e.g. "yaml-default"). */
  readonly name: string;
  /** Where it reads from, for humans (a path, a table, a ConfigMap). */
  readonly location: string;
  /**
   * Every valid configuration in the source, and a message per rejected entry naming its
   * file/row/key and field (use parseBrainConfigYaml / parseBrainConfigs, then mergeReads).
   * Throws only when the source as a whole cannot be read (no directory, no ConfigMap).
   */
  read(): Promise<SourceRead>;
}
