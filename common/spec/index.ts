// The job spec room's door: schema, resolved types, parsing and error formatting.
export { API_VERSION, BACKENDS, KIND, jobSpecSchema } from './schema.ts';
export type {
  Backend, CheckpointSpec, DatasetSpec, EntrypointSpec, FaultToleranceSpec, JobSpec, KubernetesOptions,
  NodesSpec, RayOptions, RendezvousSpec, ResourcesSpec,
} from './types.ts';
export { loadJobSpecFile, parseJobSpec, parseJobSpecText, type JobSpecFileResult, type JobSpecResult } from './load.ts';
export type { ResolveOptions } from './resolve.ts';
export { formatSpecErrors, formatSpecWarnings, type SpecError } from './errors.ts';
export { LIMITS } from './fields.ts';
export { formatDuration, parseDuration, parseMemory } from './units.ts';
