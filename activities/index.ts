// Activities Rover's workers register.
export { createJobActivities, type JobActivityDeps } from './job.ts';
export { createBrainActivities, type BrainActivityDeps } from './brain.ts';
export { createOptimizerActivities } from './optimizer.ts';
