// Every API call the kubernetes backend makes, as (resource → verbs) in the job namespace. The
// Role in deploy/kubernetes/rbac-worker.yaml grants exactly this; a test checks both ways.
export const BACKEND_PERMISSIONS: Record<string, readonly string[]> = {
  // createNamespacedPod; readNamespacedPod (delete wait); list + watch (pod cache, releaseJob); deleteNamespacedPod
  pods: ['create', 'get', 'list', 'watch', 'delete'],
  // readNamespacedPodLog: `rover logs` of a kubernetes job (cli/kubeLogs.ts) run with this identity
  'pods/log': ['get'],
  // createNamespacedService (headless service); deleteNamespacedService (job end)
  services: ['create', 'delete'],
  // createNamespacedConfigMap + readNamespacedConfigMap (owner object); deleteNamespacedConfigMap
  configmaps: ['create', 'get', 'delete'],
};
