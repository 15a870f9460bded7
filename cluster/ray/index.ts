// The Ray backend's door: the backend, the agent bundle builder and the Jobs API client.
export { RayBackend, rayLogUrl } from './rayBackend.ts';
export { AGENT_BUNDLE_FILE, buildAgentBundle } from './agentBundle.ts';
export { RayJobsClient, RayUnreachableError, type RayJobInfo } from './jobsApi.ts';
export { submissionId, runTag } from './submission.ts';
