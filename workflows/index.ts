// Workflow entry point for the worker's bundler: every workflow Rover registers.
export { elasticJob } from './job/elasticJob.ts';
export { brainConfigSync } from './brain/brainConfigSync.ts';
