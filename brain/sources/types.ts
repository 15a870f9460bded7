// A place Brain configurations live (YAML directory, SQL table, Kubernetes ConfigMap, …).
// A brainConfigSync workflow reads each source periodically and publishes what it returns as
// a versioned snapshot; a source that throws keeps its last good snapshot.
import type { BrainConfigInput } from '../config/schema.ts';

export type { BrainConfigInput } from '../config/schema.ts';

export interface ConfigSource {
  /** Stable, unique name: the snapshot key and the sync workflow id suffix (e.g. "yaml-default"). */
  readonly name: string;
  /** Where it reads from, for humans (a path, a table, a ConfigMap). */
  readonly location: string;
  /**
   * Every configuration in the source, validated (use parseBrainConfigs). Throws with a message
   * naming the broken file/key and field when the source cannot be read or parsed.
   */
  read(): Promise<BrainConfigInput[]>;
}
