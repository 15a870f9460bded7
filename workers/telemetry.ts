// The worker's Temporal SDK metrics (workflow/activity task latencies, schedule-to-start,
// sticky cache, polls, …) served by the SDK core's own Prometheus exporter on /metrics.
import { Runtime } from '@temporalio/worker';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';

/**
 * Installs the SDK Runtime with the Prometheus exporter. Runtime.install may run once per
 * process and must come before the first connection; the exporter binds right away, so a port
 * in use fails here, with a message saying what to change.
 */
export function installWorkerTelemetry(config: RoverConfig, logger: Logger): void {
  const bindAddress = config.workerMetricsAddress;
  if (!bindAddress) return;
  try {
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress } } } });
  } catch (err) {
    throw new Error(
      `cannot serve worker metrics on ${bindAddress} (${(err as Error).message}); set ROVER_WORKER_METRICS_ADDRESS to a free host:port or off`,
    );
  }
  logger.info({ metrics: `http://${bindAddress}/metrics` }, 'worker metrics exporter listening');
}
