// Activities Rover's workers register.
export { createJobActivities, type JobActivityDeps } from './job.ts';
