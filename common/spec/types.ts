// The resolved ElasticJob spec: every default filled, durations in milliseconds, memory in
// bytes, CPU in cores. Type-only module, safe to import from workflow code.
import type { ParsedJobSpec } from './schema.ts';

type Flat<T> = { [K in keyof T]: T[K] } & {};
type Parsed = ParsedJobSpec['spec'];

export type Backend = Parsed['backend'];
export type NodesSpec = Parsed['nodes'];
export type EntrypointSpec = Parsed['entrypoint'];
export type ResourcesSpec = Parsed['resources'];
export type DatasetSpec = NonNullable<Parsed['dataset']>;
export type FaultToleranceSpec = Parsed['faultTolerance'];
export type RendezvousSpec = Parsed['rendezvous'];
export type CheckpointSpec = Flat<Omit<Parsed['checkpoint'], 'dir'> & { dir: string }>;
/** Present whenever backend is 'kubernetes' (then `image` is set too). */
export type KubernetesOptions = NonNullable<Parsed['kubernetes']>;
/** Present whenever backend is 'ray'. */
export type RayOptions = NonNullable<Parsed['ray']>;

export interface JobSpec {
  apiVersion: ParsedJobSpec['apiVersion'];
  kind: ParsedJobSpec['kind'];
  metadata: Flat<Omit<ParsedJobSpec['metadata'], 'user'> & { user: string }>;
  spec: Flat<Omit<Parsed, 'checkpoint'> & { checkpoint: CheckpointSpec }>;
}
